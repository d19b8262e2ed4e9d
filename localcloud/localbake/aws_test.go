package localbake

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// isolateAWS leaves the SDK nothing to find: no AWS_* variables, a HOME
// without ~/.aws, and the instance metadata service at a closed local port,
// so the check can neither succeed by accident nor reach anything.
func isolateAWS(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "") // restores it after the test
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOME", t.TempDir())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://"+closed)
}

// TestCheckAWSNothing: without credentials or a region the check fails at
// once, naming both and where it looked.
func TestCheckAWSNothing(t *testing.T) {
	isolateAWS(t)
	start := time.Now()
	_, err := CheckAWS(context.Background(), 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the check took %s; want it to fail at once", d.Round(time.Millisecond))
	}
	if err == nil {
		t.Fatal("no error without credentials or a region")
	}
	for _, want := range []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "SSO", "instance metadata service", "no AWS region: set AWS_REGION"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
}

// TestCheckAWSNoRegion: credentials alone are not enough.
func TestCheckAWSNoRegion(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "example")
	_, err := CheckAWS(context.Background(), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "no AWS region") || strings.Contains(err.Error(), "no AWS credentials") {
		t.Fatalf("want only the region missing, got %v", err)
	}
}

// TestCheckAWSEnv: static credentials and a region from the environment
// pass without a network call.
func TestCheckAWSEnv(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "example")
	t.Setenv("AWS_REGION", "eu-west-1")
	a, err := CheckAWS(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if a.Region != "eu-west-1" || a.Source != "EnvConfigCredentials" {
		t.Errorf("got %+v", a)
	}
}

// TestCheckAWSMissingProfile: a profile named but not configured is said.
func TestCheckAWSMissingProfile(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_PROFILE", "zkaas-nowhere")
	_, err := CheckAWS(context.Background(), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "zkaas-nowhere") {
		t.Fatalf("want the missing profile named, got %v", err)
	}
}
