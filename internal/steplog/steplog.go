// Package steplog is the one way zkaas logs an operation: "step started",
// then "step finished" or "step failed", with the same keys everywhere —
// step (what), duration, err, and the resource ids the caller adds — so a
// journal of firstboot and a log of the local cloud read alike and can be
// filtered with one query (step=claim, err!="").
package steplog

import (
	"context"
	"log/slog"
	"time"
)

// Keys every step record carries.
const (
	KeyStep     = "step"
	KeyDuration = "duration"
	KeyErr      = "err"
)

// Step is one operation in progress.
type Step struct {
	ctx   context.Context
	log   *slog.Logger
	name  string
	start time.Time
	attrs []any
}

// Start logs "step started" and returns the step; attrs (key, value pairs:
// the resource ids) are repeated on the record that ends it. A nil log
// means slog.Default().
func Start(ctx context.Context, log *slog.Logger, name string, attrs ...any) *Step {
	if log == nil {
		log = slog.Default()
	}
	s := &Step{ctx: ctx, log: log, name: name, start: time.Now(), attrs: attrs}
	log.InfoContext(ctx, "step started", append([]any{KeyStep, name}, attrs...)...)
	return s
}

// Elapsed is the time since the step started.
func (s *Step) Elapsed() time.Duration { return time.Since(s.start) }

// End logs "step finished", or "step failed" with err, with the duration
// and any more attrs learnt while the step ran (a changes count, the link
// found), and returns err unchanged.
func (s *Step) End(err error, more ...any) error {
	attrs := append(append([]any{KeyStep, s.name, KeyDuration, s.Elapsed()}, s.attrs...), more...)
	if err != nil {
		s.log.ErrorContext(s.ctx, "step failed", append(attrs, KeyErr, err)...)
		return err
	}
	s.log.InfoContext(s.ctx, "step finished", attrs...)
	return nil
}

// Defer ends the step with the error *errp holds when the function
// returns: defer steplog.Start(ctx, log, "attach", "eni", id).Defer(&err).
func (s *Step) Defer(errp *error) { s.End(*errp) }

// Run runs f as one step.
func Run(ctx context.Context, log *slog.Logger, name string, f func() error, attrs ...any) error {
	return Start(ctx, log, name, attrs...).End(f())
}
