package feedback

// nackLog is what a SpeakerSession NACKs from: which of the last
// nackLogSize sequence numbers of the speaker's stream arrived, and how
// often each missing one was NACKed already. It is driven by the caller's
// clock (SpeakerSession.Poll), so no goroutine or timer runs per speaker,
// and it allocates nothing. Its rules are pion/interceptor's NACK
// generator's: a gap is NACKed from the packet after the last one received
// in sequence up to the highest received, each sequence number at most
// maxPerPacket times, and a packet that falls more than nackLogSize behind
// the highest is given up.
type nackLog struct {
	received [nackLogSize / 64]uint64 // bit per sequence number, by seq % nackLogSize
	nacked   [nackLogSize]uint8       // NACKs sent per missing sequence number, by seq % nackLogSize
	end      uint16                   // the highest sequence number received
	last     uint16                   // the last one up to which every packet arrived (or was given up)
	started  bool
}

// add notes that seq arrived.
func (l *nackLog) add(seq uint16) {
	if !l.started {
		l.set(seq)
		l.end, l.last, l.started = seq, seq, true
		return
	}
	switch d := seq - l.end; {
	case d == 0:
		return
	case d < 1<<15: // newer than the highest
		for i := l.end + 1; i != seq; i++ {
			l.clear(i) // a slot reused for a sequence number not (yet) come
		}
		l.end = seq
		if l.last+1 == seq {
			l.last = seq
		} else if seq-l.last > nackLogSize {
			l.last = seq - nackLogSize // older gaps are given up
			l.set(seq)
			l.advance()
			return
		}
	case l.end-seq >= nackLogSize:
		return // older than the log: its slot is a newer packet's
	case l.last+1 == seq: // the oldest gap filled
		l.set(seq)
		l.last = seq
		l.advance()
		return
	}
	l.set(seq)
}

// missing appends the sequence numbers to NACK now to dst and counts each
// as NACKed once more: those missing after the last in sequence, up to the
// highest received, NACKed fewer than maxPerPacket times.
func (l *nackLog) missing(dst []uint16, maxPerPacket uint16) []uint16 {
	if !l.started || l.end-l.last >= 1<<15 {
		return dst
	}
	for i := l.last + 1; i != l.end+1; i++ {
		if l.has(i) {
			continue
		}
		if n := &l.nacked[i%nackLogSize]; uint16(*n) < maxPerPacket && *n < 255 {
			dst = append(dst, i)
			*n++
		}
	}
	return dst
}

// reset forgets the stream (a new SSRC).
func (l *nackLog) reset() { *l = nackLog{} }

// advance moves last over every packet received in sequence after it.
func (l *nackLog) advance() {
	for l.last != l.end && l.has(l.last+1) {
		l.last++
	}
}

func (l *nackLog) set(seq uint16) {
	p := seq % nackLogSize
	l.received[p/64] |= 1 << (p % 64)
	l.nacked[p] = 0
}

func (l *nackLog) clear(seq uint16) {
	p := seq % nackLogSize
	l.received[p/64] &^= 1 << (p % 64)
	l.nacked[p] = 0
}

func (l *nackLog) has(seq uint16) bool {
	p := seq % nackLogSize
	return l.received[p/64]&(1<<(p%64)) != 0
}
