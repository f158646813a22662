package server

import (
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
)

// receptionView is what a participant's RTCP reports say about its stream.
type receptionView struct {
	Reports      uint64  `json:"reports"`
	FractionLost float64 `json:"fraction_lost"`
	JitterMS     float64 `json:"jitter_ms"`
	RTTMS        float64 `json:"rtt_ms"`
	NACKs        uint64  `json:"nacks"`
}

// uplinkView is what the server measures of a speaker's incoming stream.
type uplinkView struct {
	PacketsReceived uint64  `json:"packets_received"`
	PacketsLost     int64   `json:"packets_lost"`
	JitterMS        float64 `json:"jitter_ms"`
	TargetDelayMS   float64 `json:"target_delay_ms"`
	ConcealedMS     float64 `json:"concealed_ms"`
	NACKsSent       uint64  `json:"nacks_sent"`
}

func reception(m *session.Member) *receptionView {
	st := m.Reception()
	if st.Reports == 0 {
		return nil
	}
	return &receptionView{
		Reports: st.Reports, FractionLost: st.FractionLost,
		JitterMS: st.Jitter * 1e3, RTTMS: float64(st.RTT) / 1e6, NACKs: st.NACKs,
	}
}

func uplink(m *session.Member, js *engine.ParticipantStats) *uplinkView {
	if js.Jitter == nil {
		return nil
	}
	j := js.Jitter
	u := &uplinkView{
		PacketsReceived: j.PacketsReceived, PacketsLost: j.PacketsLost,
		JitterMS: j.Jitter * 1e3, TargetDelayMS: float64(j.TargetDelay) / 1e6,
		ConcealedMS: float64(j.ConcealedSamples) / 48,
	}
	if sp, ok := m.Uplink(); ok {
		u.NACKsSent = sp.NACKsSent
	}
	return u
}

// reportedLevelView is the RFC 6464 level a client reports of its own
// voice: a claim, which the mix does not trust.
type reportedLevelView struct {
	Level         uint8 `json:"level"` // 0 loud .. 127 silent
	VoiceActivity bool  `json:"voice_activity"`
}

func reportedLevel(st *engine.ParticipantStats) *reportedLevelView {
	if !st.LevelReported {
		return nil
	}
	return &reportedLevelView{Level: st.ReportedLevel, VoiceActivity: st.VoiceActivity}
}
