//go:build !linux

package etcdtest

import "os/exec"

// startDyingWithUs starts cmd and calls exited once it has been reaped.
// (Only Linux kills it when the test binary dies before its cleanups run.)
func startDyingWithUs(cmd *exec.Cmd, exited func()) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		_ = cmd.Wait()
		exited()
	}()
	return nil
}
