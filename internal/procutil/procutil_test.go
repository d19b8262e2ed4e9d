package procutil

import (
	"os"
	"os/exec"
	"testing"
)

func TestAlive(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	for _, pid := range []int{0, -1} {
		if Alive(pid) {
			t.Errorf("pid %d is alive", pid)
		}
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	// Reaped by Run: gone unless the number was reused at once.
	if Alive(cmd.Process.Pid) {
		t.Logf("pid %d reused already; not checked", cmd.Process.Pid)
	}
}
