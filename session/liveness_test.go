package session_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
)

// leftEvents records the reasons participants left a room with.
type leftEvents struct {
	mu      sync.Mutex
	reasons map[string]string
}

func (e *leftEvents) on(ev engine.Event) {
	if ev.Kind != engine.EventLeft {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reasons[ev.Participant] = ev.Reason
}

func (e *leftEvents) reason(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reasons[id]
}

// liveWorld is a world whose room records who left and why.
func liveWorld(t *testing.T, cfg session.Config) (*world, *leftEvents) {
	w := newWorld(t, cfg)
	ev := &leftEvents{reasons: map[string]string{}}
	r, err := w.mgr.NewRoom("live", engine.RoomConfig{OnEvent: ev.on})
	if err != nil {
		t.Fatal(err)
	}
	w.room = r
	return w, ev
}

// TestIdleMembersTimeOut: a speaker and a listener that sent RTP or RTCP
// and then fell silent are removed with reason "timeout" once
// IdleTimeout has passed, not before; a member that keeps sending stays,
// and so does a receive-only listener that never sent anything.
func TestIdleMembersTimeOut(t *testing.T) {
	w, ev := liveWorld(t, session.Config{})
	speaker, sl := w.join("speaker", engine.Speaker)
	listener, ll := w.join("listener", engine.Listener)
	chatty, _ := w.join("chatty", engine.Speaker)
	_, ql := w.join("quiet", engine.Listener)

	k := newTalker(t)
	speaker.ReceiveRTP(k.next(t))
	listener.ReceiveRTCP(marshal(t, &rtcp.ReceiverReport{SSRC: 7}))
	chatty.ReceiveRTP(k.next(t))

	sweep := func(after time.Duration) int {
		w.clk.Advance(after)
		return w.mgr.Sweep(w.clk.Now())
	}
	if n := sweep(0); n != 0 {
		t.Fatalf("swept %d at once", n)
	}
	for range 29 {
		chatty.ReceiveRTP(k.next(t))
		if n := sweep(time.Second); n != 0 {
			t.Fatalf("swept %d before the idle timeout", n)
		}
	}
	chatty.ReceiveRTP(k.next(t))
	if n := sweep(time.Second); n != 2 {
		t.Fatalf("swept %d at the idle timeout, want 2 (speaker and listener)", n)
	}
	for id, l := range map[string]*memLink{"speaker": sl, "listener": ll} {
		if got := ev.reason(id); got != session.ReasonTimeout {
			t.Errorf("%s left with reason %q, want %q", id, got, session.ReasonTimeout)
		}
		if _, _, _, closed := l.state(); !closed {
			t.Errorf("%s: link still open", id)
		}
		if _, ok := w.room.Member(id); ok {
			t.Errorf("%s still a member", id)
		}
	}
	// Ten minutes on, the one that never sent is still there.
	for range 10 {
		chatty.ReceiveRTP(k.next(t))
		if n := sweep(time.Minute); n != 0 {
			t.Fatalf("swept %d: a member that keeps sending or never sent", n)
		}
	}
	if _, _, _, closed := ql.state(); closed {
		t.Error("the receive-only listener was removed")
	}
	if got := w.mgr.Stats().TimedOut; got != 2 {
		t.Errorf("TimedOut %d, want 2", got)
	}
}

// TestMemberTimeout: a transport that sees its participant go removes it
// with reason "timeout", once, counted and exported.
func TestMemberTimeout(t *testing.T) {
	w, ev := liveWorld(t, session.Config{})
	m, l := w.join("gone", engine.Listener)
	if !m.Timeout() {
		t.Fatal("Timeout: the participant was not there")
	}
	if m.Timeout() {
		t.Error("a second Timeout removed it again")
	}
	if got := ev.reason("gone"); got != session.ReasonTimeout {
		t.Errorf("left with reason %q", got)
	}
	if _, _, _, closed := l.state(); !closed {
		t.Error("link still open")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(session.NewCollector(w.mgr))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP handsup_participants_timed_out_total Participants removed with reason timeout: silent for the idle timeout after sending RTP or RTCP, or gone by their transport's account (ICE consent).
# TYPE handsup_participants_timed_out_total counter
handsup_participants_timed_out_total 1
`), "handsup_participants_timed_out_total"); err != nil {
		t.Error(err)
	}
}

// TestIdleTimeoutOff: a negative IdleTimeout keeps silent members.
func TestIdleTimeoutOff(t *testing.T) {
	w, _ := liveWorld(t, session.Config{IdleTimeout: -1})
	m, _ := w.join("s", engine.Speaker)
	m.ReceiveRTP(newTalker(t).next(t))
	for range 3 {
		w.clk.Advance(time.Hour)
		if n := w.mgr.Sweep(w.clk.Now()); n != 0 {
			t.Fatalf("swept %d with the timeout off", n)
		}
	}
}
