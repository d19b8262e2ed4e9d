package localcloud

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// imagePATH is systemd's default PATH for services.
const imagePATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

// Environ is the environment programs on the instance get from Command: the
// harness's (with an image, PATH is systemd's default instead), without AWS
// settings or proxies of the host, plus what points the AWS SDK at the
// local cloud — the region, the endpoints of EC2, Auto Scaling, IAM, DLM,
// Secrets Manager and SSM (the SDK's standard AWS_ENDPOINT_URL_<SERVICE>
// variables), and static credentials whose
// access key id is the instance id (the simulator logs it as the caller).
func (inst *Instance) Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			continue
		}
		if !strings.HasPrefix(k, "AWS_") {
			env = append(env, kv)
		}
	}
	if inst.rootDir != "" {
		// The harness's PATH names host directories; programs of the
		// image get the one systemd gives services.
		env = append(env, "PATH="+imagePATH)
	}
	return append(env,
		"AWS_REGION="+inst.Region,
		"AWS_ENDPOINT_URL_EC2="+inst.cloud.EC2Endpoint(),
		"AWS_ENDPOINT_URL_AUTO_SCALING="+inst.cloud.AutoScalingEndpoint(),
		"AWS_ENDPOINT_URL_IAM="+inst.cloud.IAMEndpoint(), "AWS_ENDPOINT_URL_DLM="+inst.cloud.DLMEndpoint(),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER="+inst.cloud.SecretsEndpoint(), "AWS_ENDPOINT_URL_SSM="+inst.cloud.SecretsEndpoint(),
		"AWS_ACCESS_KEY_ID="+inst.ID,
		"AWS_SECRET_ACCESS_KEY=localcloud",
	)
}

// Command returns a command that runs name on the instance: in its network
// and mount namespaces and, with an image, inside its root (nsenter and
// chroot exec in turn, so the process's PID is the program's), with
// Environ, killed if the harness dies. On a machine (BootSystemd) it runs in
// all the namespaces of its PID 1 — its root, PID namespace, host name —
// as a process of the machine: `systemctl`, `journalctl`, `zkCli.sh`, ...;
// there nsenter forks into the PID namespace, so cmd.Process is nsenter,
// not the program. Its working directory is the instance's "/"; cmd.Dir
// has no effect. Run it, or Start it on the instance to have it tracked.
func (inst *Instance) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if inst.machine != nil {
		cmd := inst.machineCommand(ctx, name, args...)
		cmd.Env = inst.Environ()
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	t := inst.cloud.tools
	argv := []string{"--net=" + inst.NetNS, "--mount=" + inst.MountNS, "--"}
	if inst.rootDir != "" {
		// chroot runs in the instance's mount namespace, where rootDir is
		// the overlay; nsenter's own --root would open it on the host,
		// before entering the namespace, and find an empty directory.
		argv = append(argv, t.chroot, inst.rootDir)
	}
	cmd := exec.CommandContext(ctx, t.nsenter, append(append(argv, name), args...)...)
	cmd.Env = inst.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Process is a long-running program on an instance.
type Process struct {
	PID  int
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts cmd (from Command) and tracks it: Terminate and Close kill it
// by PID, along with anything else left in the instance's namespaces.
func (inst *Instance) Start(cmd *exec.Cmd) (*Process, error) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if inst.terminated {
		return nil, fmt.Errorf("start %s on %s: instance terminated", cmd.Args, inst.ID)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", cmd.Args, inst.ID, err)
	}
	p := &Process{PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	inst.procs[p] = true
	go func() {
		p.err = cmd.Wait()
		inst.mu.Lock()
		delete(inst.procs, p)
		inst.mu.Unlock()
		close(p.done)
	}()
	inst.log.Info("process started", "step", "start", "pid", p.PID, "args", cmd.Args)
	return p, nil
}

// Wait waits for the process to exit and returns how it did (cmd.Wait's
// error); any number of callers may wait.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %d: %w", p.PID, err)
	}
	<-p.done
	return nil
}
