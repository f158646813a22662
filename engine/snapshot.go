package engine

import (
	"sort"

	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
)

// RoomSnapshot is a room at one moment, for dashboards and APIs: cheap
// enough to take on every scrape, even with a large audience.
type RoomSnapshot struct {
	ID         string
	InviteOnly bool
	Members    int
	ByRole     [numRoles]int // members per Role, indexed by Role
	Muted      int
	HandsUp    int
	// Hands is the hand queue: the ids of the members whose hand is up,
	// in the order they raised it.
	Hands []string
	// Ticks is the room's stream clock in 20 ms ticks: the ticks it ran
	// and the ones the engine skipped (Engine.Skip) since it was created.
	Ticks    uint64
	Counters Counters
	// Speakers holds every contributing participant: level, mix state and
	// jitter-buffer statistics.
	Speakers []SpeakerSnapshot
	// Jitter sums the speakers' jitter-buffer counters; its TargetDelay and
	// BufferLevel are the largest among them.
	Jitter jitter.Stats
	// Tiers counts the members on each of the room's tiers, in order.
	Tiers []TierCount
}

// TierCount is how many members are on one tier.
type TierCount struct {
	Name    string
	Members int
}

// SpeakerSnapshot is one contributing participant in a RoomSnapshot.
type SpeakerSnapshot struct {
	ID     string
	Role   Role
	Muted  bool
	Level  uint8 // RFC 6464 level of the last frame: 0 loud, 127 silent
	Mixed  bool  // in the last tick's mix
	Jitter jitter.Stats
}

// Snapshot returns the room's state. It holds the room's lock while it
// reads, so it waits for a tick in progress.
func (r *Room) Snapshot() RoomSnapshot {
	type raised struct {
		seq uint64
		id  string
	}
	var hands []raised
	r.mu.Lock()
	s := RoomSnapshot{
		ID: r.id, InviteOnly: r.cfg.InviteOnly,
		Members: len(r.members), Ticks: r.tick,
		Speakers: make([]SpeakerSnapshot, 0, len(r.speakers)),
	}
	for _, p := range r.members {
		s.ByRole[p.Role()]++
		if p.muted {
			s.Muted++
		}
		if p.hand.Load() {
			s.HandsUp++
			hands = append(hands, raised{p.handSeq, p.id})
		}
	}
	sort.Slice(hands, func(i, j int) bool { return hands[i].seq < hands[j].seq })
	s.Hands = make([]string, len(hands))
	for i, h := range hands {
		s.Hands[i] = h.id
	}
	s.Tiers = make([]TierCount, len(r.tiers))
	for i, t := range r.tiers {
		s.Tiers[i] = TierCount{Name: t.Name, Members: r.tierCount[i]}
	}
	for _, p := range r.speakers {
		sp := SpeakerSnapshot{ID: p.id, Role: p.Role(), Muted: p.muted, Level: mixer.SilentLevel}
		if in := p.in.Load(); in != nil {
			sp.Level = in.src.Level()
			sp.Mixed = in.src.Mixed()
			sp.Jitter = in.player.Buffer().Stats()
		}
		s.Speakers = append(s.Speakers, sp)
	}
	r.mu.Unlock()
	s.Counters = r.counters.snapshot()
	for _, sp := range s.Speakers {
		addJitter(&s.Jitter, &sp.Jitter)
	}
	return s
}

// addJitter sums counters and keeps the largest delays.
func addJitter(sum, s *jitter.Stats) {
	sum.PacketsReceived += s.PacketsReceived
	sum.PacketsLost += s.PacketsLost
	sum.PacketsDiscarded += s.PacketsDiscarded
	sum.PacketsDuplicated += s.PacketsDuplicated
	sum.Jitter = max(sum.Jitter, s.Jitter)
	sum.JitterBufferDelay += s.JitterBufferDelay
	sum.JitterBufferTargetDelay += s.JitterBufferTargetDelay
	sum.JitterBufferEmittedCount += s.JitterBufferEmittedCount
	sum.TotalSamplesReceived += s.TotalSamplesReceived
	sum.ConcealedSamples += s.ConcealedSamples
	sum.SilentConcealedSamples += s.SilentConcealedSamples
	sum.ConcealmentEvents += s.ConcealmentEvents
	sum.FecPacketsReceived += s.FecPacketsReceived
	sum.InsertedSamplesForDeceleration += s.InsertedSamplesForDeceleration
	sum.RemovedSamplesForAcceleration += s.RemovedSamplesForAcceleration
	sum.DroppedSamples += s.DroppedSamples
	sum.Resets += s.Resets
	sum.TargetDelay = max(sum.TargetDelay, s.TargetDelay)
	sum.BufferLevel = max(sum.BufferLevel, s.BufferLevel)
}
