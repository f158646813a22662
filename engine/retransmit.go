package engine

// Retransmit answers a NACK (RFC 4585) for packets of the participant's
// stream: each one still in its output's history is sent again, unchanged,
// through the participant's sink. It answers only while the participant's
// reported round trip is within RoomConfig.NACKMaxRTT (a later copy comes
// too late to play) and within NACKRate a second; it returns how many it
// sent. The packets come from the room's shared history: nothing is kept
// per participant but the sequence numbers.
func (p *Participant) Retransmit(seqs []uint16) int {
	r := p.room
	now := r.eng.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.counters
	if p.left.Load() || p.sink == nil {
		return 0
	}
	if p.ts.rtt > r.cfg.NACKMaxRTT {
		c.nacksRefused.Add(uint64(len(seqs)))
		return 0
	}
	sent := 0
	for _, seq := range seqs {
		tick, src, ok := p.out.sentAt(seq)
		var payload []byte
		if ok {
			payload, ok = src.packetAt(tick)
		}
		if !ok || !p.ts.allowNACK(now, r.cfg.NACKRate) {
			c.nacksRefused.Add(1)
			continue
		}
		pt := p.out.payloadType
		if p.out.redPT != 0 {
			pt = p.out.redPT
			// A fresh buffer: the sink may hold it past this call, and a
			// NACK is rare and rate-limited.
			payload = src.appendRED(nil, tick, p.out.payloadType, r.tiers[src.tier].RED)
		}
		p.out.writeHeader(pt, false, seq, p.out.timestamp(tick))
		if err := p.sink.WriteRTP(p.out.header[:], payload); err != nil {
			c.sinkErrors.Add(1)
			continue
		}
		c.retransmitted.Add(1)
		sent++
	}
	return sent
}
