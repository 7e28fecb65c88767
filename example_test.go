package sharelock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"sharelock"
	"sharelock/internal/folder"
	"sharelock/internal/ident"
)

// exampleDir makes a folder for an example; a real program would use the
// shared folder that holds its database.
func exampleDir() string {
	dir, err := os.MkdirTemp("", "sharelock-example-")
	if err != nil {
		panic(err)
	}
	return dir
}

// otherMachine returns a store that acts as another user on another machine
// would: it stands in for a second computer in these examples.
func otherMachine(user, host string) sharelock.Store {
	id := ident.Self()
	id.User, id.Host, id.MachineID = user, host, "example-machine-"+host
	return folder.New(folder.Options{Self: &id})
}

func ExampleAcquire() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lock, err := sharelock.Acquire(ctx, db, sharelock.WithApp("wems"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Use the database here, passing lock.Token() along with each write.
	fmt.Println("first hold, token", lock.Token())
	if err := lock.Release(); err != nil {
		fmt.Println(err)
	}

	// Every new hold gets a higher token.
	lock, err = sharelock.Acquire(ctx, db, sharelock.WithApp("wems"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("second hold, token", lock.Token())
	fmt.Println("released:", lock.Release())
	// Output:
	// first hold, token 1
	// second hold, token 2
	// released: <nil>
}

func ExampleTryAcquire() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")
	ctx := context.Background()

	// Alice holds the database on the front-desk PC.
	alice, err := sharelock.TryAcquire(ctx, db, sharelock.WithApp("wems.exe"),
		sharelock.WithStore(otherMachine("alice", "FRONTDESK-PC")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Release()

	// Here, TryAcquire is refused at once, naming her.
	_, err = sharelock.TryAcquire(ctx, db)
	var locked *sharelock.LockedError
	if errors.As(err, &locked) {
		fmt.Println("in use by", locked.Holder.Who())
		fmt.Println("token:", locked.Token)
		fmt.Println("ErrLocked:", errors.Is(err, sharelock.ErrLocked))
	}
	// Output:
	// in use by alice on FRONTDESK-PC (wems.exe)
	// token: 1
	// ErrLocked: true
}

func ExampleInspect() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")
	ctx := context.Background()

	info, _ := sharelock.Inspect(ctx, db)
	fmt.Println(info.State, info.Token)

	alice, err := sharelock.TryAcquire(ctx, db, sharelock.WithApp("wems.exe"),
		sharelock.WithStore(otherMachine("alice", "FRONTDESK-PC")))
	if err != nil {
		fmt.Println(err)
		return
	}
	info, _ = sharelock.Inspect(ctx, db)
	fmt.Println(info.State, info.Token, "by", info.Holder.Who())

	alice.Release()
	info, _ = sharelock.Inspect(ctx, db, sharelock.WithHistory(5))
	fmt.Println(info.State, info.Token)
	for _, e := range info.History {
		fmt.Println("history:", e.Token, e.Kind, e.State, e.Holder.User)
	}
	// Output:
	// free 0
	// held 1 by alice on FRONTDESK-PC (wems.exe)
	// free 1
	// history: 1 acquire released alice
}

func ExampleBreak() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")
	ctx := context.Background()

	// Alice went home and left wems running on her locked PC. A short lease
	// makes her heartbeat (and so her learning of the break) quick.
	alice, err := sharelock.TryAcquire(ctx, db, sharelock.WithApp("wems.exe"), sharelock.WithLease(3*time.Second),
		sharelock.WithStore(otherMachine("alice", "FRONTDESK-PC")))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Without force, Break refuses a holder whose heartbeat still changes
	// (it would watch for up to a lease); an administrator forces it.
	info, err := sharelock.Break(ctx, db, "alice went home", true)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("broke", info.Holder.Who(), "with token", info.Token)

	// Alice's program learns at its next heartbeat.
	select {
	case <-alice.Lost():
		fmt.Println("alice lost it:", errors.Is(alice.Err(), sharelock.ErrLost))
	case <-time.After(10 * time.Second):
		fmt.Println("alice did not notice")
	}
	fmt.Println("her release reports it:", errors.Is(alice.Release(), sharelock.ErrLost))

	// A free lock has nothing to break.
	_, err = sharelock.Break(ctx, db, "again", true)
	fmt.Println("ErrNotHeld:", errors.Is(err, sharelock.ErrNotHeld))

	// The next hold's token is above the break's.
	lock, err := sharelock.TryAcquire(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("next token", lock.Token())
	lock.Release()
	// Output:
	// broke alice on FRONTDESK-PC (wems.exe) with token 2
	// alice lost it: true
	// her release reports it: true
	// ErrNotHeld: true
	// next token 3
}

func ExampleLock_Lost() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")
	ctx := context.Background()

	lock, err := sharelock.TryAcquire(ctx, db)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lock.Release()
	// Before each critical write: Check. While working: watch Lost.
	if err := lock.Check(); err != nil {
		fmt.Println("stop writing:", err)
		return
	}
	select {
	case <-lock.Lost():
		fmt.Println("stop writing:", lock.Err())
	default:
		fmt.Println("safe to write with token", lock.Token())
	}
	// Output:
	// safe to write with token 1
}

// A holder listens for release requests; a colleague asks for the database.
func ExampleRequestRelease() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "wems.db")
	ctx := context.Background()

	alice, err := sharelock.Acquire(ctx, db, sharelock.WithApp("wems.exe"),
		sharelock.WithStore(otherMachine("alice", "FRONTDESK-PC")),
		sharelock.WithLease(4*time.Second), sharelock.WithHeartbeat(200*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer alice.Release()
	notices := alice.Notices() // from now on requests are delivered

	// Bob, on another PC, asks for it.
	res, err := sharelock.RequestRelease(ctx, db, "need to print payroll",
		sharelock.WithStore(otherMachine("bob", "PC-3")))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bob's request:", res.Delivery, "to", res.Holder.User)

	// Alice's program shows it to her.
	n := <-notices
	fmt.Printf("alice sees: %s on %s asks: %q\n", n.From.User, n.From.Host, n.Message)
	// Output:
	// bob's request: delivered to alice
	// alice sees: bob on PC-3 asks: "need to print payroll"
}
