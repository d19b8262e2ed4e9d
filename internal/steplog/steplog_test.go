package steplog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRecords(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"finished", nil, []string{
			`level=INFO msg="step started" step=attach eni=eni-1`,
			`level=INFO msg="step finished" step=attach duration=X eni=eni-1 changes=2`,
		}},
		{"failed", errors.New("in use"), []string{
			`level=INFO msg="step started" step=attach eni=eni-1`,
			`level=ERROR msg="step failed" step=attach duration=X eni=eni-1 changes=2 err="in use"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				switch a.Key {
				case slog.TimeKey:
					return slog.Attr{}
				case KeyDuration:
					return slog.String(KeyDuration, "X")
				}
				return a
			}}))
			s := Start(context.Background(), log, "attach", "eni", "eni-1")
			if got := s.End(tt.err, "changes", 2); got != tt.err {
				t.Errorf("End returned %v, want %v", got, tt.err)
			}
			if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestDeferSeesTheReturnedError(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	f := func() (err error) {
		defer Start(context.Background(), log, "detach", "volume", "vol-1").Defer(&err)
		return errors.New("busy")
	}
	if err := f(); err == nil || !strings.Contains(buf.String(), `msg="step failed" step=detach`) || !strings.Contains(buf.String(), `err=busy`) {
		t.Errorf("err %v, log:\n%s", err, buf.String())
	}
}
