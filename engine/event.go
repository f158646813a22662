package engine

// EventKind names what happened in a room.
type EventKind string

// Room events.
const (
	EventJoined EventKind = "joined"
	EventLeft   EventKind = "left"
	EventRole   EventKind = "role_changed"
	EventMuted  EventKind = "muted"
	EventHand   EventKind = "hand"
)

// Event is one change in a room, as RoomConfig.OnEvent hears it.
type Event struct {
	Kind        EventKind
	Room        string
	Participant string
	Role        Role   // EventJoined, EventRole
	Muted       bool   // EventMuted
	HandRaised  bool   // EventHand
	Reason      string // EventLeft: "left", "room closed", or the kicker's reason
}
