// Package nsutil runs code inside a network namespace without ever leaving
// another goroutine there: namespaces belong to OS threads, and Go moves
// goroutines between threads.
package nsutil

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// OnLockedThread runs fn on a dedicated, locked OS thread (a goroutine of
// its own) and returns the thread to its original network namespace
// afterwards. If that fails, the thread stays locked so the runtime
// discards it when the goroutine exits: no other goroutine may ever run in
// a namespace it did not ask for. Sockets fn opens keep their namespace.
func OnLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// InNetNS runs fn inside the network namespace h (see OnLockedThread).
func InNetNS(h netns.NsHandle, fn func() error) error {
	return OnLockedThread(func() error {
		if err := netns.Set(h); err != nil {
			return fmt.Errorf("enter netns: %w", err)
		}
		return fn()
	})
}
