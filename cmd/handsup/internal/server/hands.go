package server

import "net/http"

type handView struct {
	ID   string `json:"id"`
	Role string `json:"role"`
}

// handQueue is the room's raised hands, first raised first, in the
// engine's raise order (engine.Snapshot.Hands).
func (r *room) handQueue() []handView {
	ids := r.Snapshot().Hands
	out := make([]handView, 0, len(ids))
	for _, id := range ids {
		p, ok := r.Participant(id)
		if !ok {
			continue // left since the snapshot
		}
		out = append(out, handView{ID: id, Role: p.Role().String()})
	}
	return out
}

// getHands answers the hand queue (moderators and the admin).
func (s *Server) getHands(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	if err := s.allow(principalOf(r), rm, actHands, ""); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hands": rm.handQueue()})
}
