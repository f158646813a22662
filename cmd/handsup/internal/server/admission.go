package server

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/handsup-audio/handsup/engine"
)

// errJoinRate: joins come faster than Config.JoinRate (429 with
// Retry-After).
var errJoinRate = errors.New("too many joins: try again later")

// retryAfter is an error that says when to try again (Retry-After).
type retryAfter struct {
	err   error
	after time.Duration
}

func (e *retryAfter) Error() string { return e.err.Error() }
func (e *retryAfter) Unwrap() error { return e.err }

// overloadRetry is the Retry-After of a refusal for load: about the time
// the smoothed tick time takes to follow a change.
const overloadRetry = 2 * time.Second

// streamsRetry is the Retry-After of a refused event stream.
const streamsRetry = 10 * time.Second

// admission is the server's join rate limit and its refusal counters.
type admission struct {
	mu    sync.Mutex
	joins *rate.Limiter

	refused [numAdmitReasons]atomic.Uint64
}

type admitReason int

const (
	admitRate       admitReason = iota // Config.JoinRate
	admitRooms                         // Config.MaxRooms
	admitServerFull                    // Config.MaxParticipants
	admitRoomFull                      // Config.MaxRoomParticipants
	admitStageFull                     // a room's max_speakers
	admitOverload                      // Config.MaxTickLoad
	admitStreams                       // Config.MaxEventStreams, MaxRoomEventStreams
	numAdmitReasons
)

var admitReasons = [numAdmitReasons]string{"join_rate", "rooms", "server_full", "room_full", "stage_full", "overload", "event_streams"}

func newAdmission(perSecond float64, burst int) *admission {
	return &admission{joins: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// allowJoin takes a join from the rate limit at now, or refuses it with
// when to try again.
func (a *admission) allowJoin(now time.Time) error {
	a.mu.Lock()
	r := a.joins.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait > 0 {
		r.CancelAt(now)
	}
	a.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	a.refused[admitRate].Add(1)
	return &retryAfter{err: errJoinRate, after: wait}
}

// count counts err if it is one of admission control's refusals, and
// returns it, with a Retry-After when the engine is overloaded.
func (a *admission) count(err error) error {
	reason := numAdmitReasons
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrTooManyRooms):
		reason = admitRooms
	case errors.Is(err, engine.ErrEngineFull):
		reason = admitServerFull
	case errors.Is(err, engine.ErrRoomFull):
		reason = admitRoomFull
	case errors.Is(err, engine.ErrStageFull):
		reason = admitStageFull
	case errors.Is(err, engine.ErrOverloaded):
		a.refused[admitOverload].Add(1)
		return &retryAfter{err: err, after: overloadRetry}
	case errors.Is(err, errStreamsFull):
		a.refused[admitStreams].Add(1)
		return &retryAfter{err: err, after: streamsRetry}
	}
	if reason < numAdmitReasons {
		a.refused[reason].Add(1)
	}
	return err
}

// retryAfterSeconds is err's Retry-After in whole seconds, rounded up;
// 0 when it has none.
func retryAfterSeconds(err error) int {
	var ra *retryAfter
	if !errors.As(err, &ra) {
		return 0
	}
	return max(1, int(math.Ceil(ra.after.Seconds())))
}

// collector exports the refusals (handsup_admission_refused_total).
func (a *admission) collector() prometheus.Collector {
	return &admissionCollector{a: a, desc: prometheus.NewDesc("handsup_admission_refused_total",
		"Rooms and joins refused by admission control, by reason: join_rate (429, past -join-rate), rooms (503, -max-rooms), server_full (503, -max-participants), room_full (409, -max-room-participants), stage_full (409, the room's max_speakers), overload (503, the engine's ticks past -max-tick-load), event_streams (503, -max-event-streams or -max-room-event-streams).",
		[]string{"reason"}, nil)}
}

type admissionCollector struct {
	a    *admission
	desc *prometheus.Desc
}

func (c *admissionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *admissionCollector) Collect(ch chan<- prometheus.Metric) {
	for r := range numAdmitReasons {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.a.refused[r].Load()), admitReasons[r])
	}
}

// checkCaps is what a join must pass before any work on it (a WebRTC
// answer costs ICE and DTLS): the join rate, and a room not full yet.
// The engine checks the caps again as it adds the participant.
func (s *Server) checkCaps(r *room) error {
	if err := s.admit.allowJoin(s.now()); err != nil {
		return err
	}
	if max := r.Config().MaxParticipants; max > 0 && r.Len() >= max {
		return s.admit.count(fmt.Errorf("%w: %d members, its most", engine.ErrRoomFull, max))
	}
	return nil
}
