package zkensemble

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// zkFlowLine ends the zookeeper: {...} line of Ensemble.Config.
const zkFlowLine = "four_letter_words: [srvr, ruok, mntr]}"

// withZooKeeper is e's config with settings (YAML flow-mapping entries,
// "tls: {...}, extra: {...}") added to its zookeeper section — user data
// for a scenario. words replaces the four-letter words when not empty.
func withZooKeeper(t testing.TB, e *Ensemble, words, settings string) []byte {
	t.Helper()
	cfg := string(e.Config())
	if !strings.Contains(cfg, zkFlowLine) {
		t.Fatalf("the ensemble's zookeeper line changed:\n%s", cfg)
	}
	if words == "" {
		words = "srvr, ruok, mntr"
	}
	return []byte(strings.Replace(cfg, zkFlowLine, "four_letter_words: ["+words+"], "+settings+"}", 1))
}

// refusedBoot waits for g's first launch's firstboot to end and returns
// its failure: the one line firstboot said (on a machine, its last journal
// line). It fails the test when the group launches nothing within a minute
// or the boot does not end within two, or did not fail.
func refusedBoot(t testing.TB, g *Groups) (*GroupBoot, *FirstbootError) {
	t.Helper()
	var b *GroupBoot
	for deadline := time.Now().Add(time.Minute); b == nil; time.Sleep(200 * time.Millisecond) {
		if boots := g.Boots(); len(boots) > 0 {
			b = boots[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("groups %v launched nothing within a minute", g.Names)
		}
	}
	select {
	case <-b.Done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s (group %s): firstboot not finished after 2m", b.InstanceID, b.Group)
	}
	var fe *FirstbootError
	if !errors.As(b.Err, &fe) {
		t.Fatalf("%s: %v; want firstboot to fail", b.InstanceID, b.Err)
	}
	return b, fe
}
