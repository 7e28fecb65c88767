package etcd

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the etcd member die with the test binary, even if it
// crashes before its cleanups run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
