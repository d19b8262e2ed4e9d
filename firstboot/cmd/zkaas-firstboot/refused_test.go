package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zkaas/zkaas/firstboot/claim"
	"github.com/zkaas/zkaas/firstboot/disk"
	"github.com/zkaas/zkaas/firstboot/secrets"
)

// TestRefused: which failures every replacement would meet too, and so are
// held as refusals (health.refused_hold) rather than retried by churn.
func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("claim: %w", claim.ErrCannotClaim), true},
		{fmt.Errorf("disk: %w", disk.ErrRefused), true},
		{fmt.Errorf("secrets: zookeeper.tls.keystore: ...: %w", secrets.ErrUnusable), true},
		{errors.New("secrets: GetSecretValue: ThrottlingException: Rate exceeded (gave up after 5 attempts)"), false},
		{errors.New("network: boom"), false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
