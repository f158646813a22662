package engine

// EventKind names what happened in a room.
type EventKind string

// Room events.
const (
	EventJoined EventKind = "joined"
	EventLeft   EventKind = "left"
	EventRole   EventKind = "role_changed"
	EventMuted  EventKind = "muted"
	// EventHand: a hand went up or down. A listener promoted to the stage
	// with its hand up has it lowered: EventRole, then EventHand.
	EventHand EventKind = "hand"
)

// Event is one change in a room, as RoomConfig.OnEvent hears it.
type Event struct {
	Kind        EventKind
	Room        string
	Participant string
	Role        Role   // EventJoined, EventRole
	Muted       bool   // EventMuted
	HandRaised  bool   // EventHand
	Reason      string // EventLeft: one of the Reason constants, or the kicker's own
}

// Reasons a participant leaves with (Event.Reason of EventLeft). Room.Kick
// takes any reason; these are the ones handsup itself gives.
const (
	ReasonLeft       = "left"        // Participant.Leave: the participant went
	ReasonKicked     = "kicked"      // removed by a moderator or the app
	ReasonTimeout    = "timeout"     // its transport lost it (silence, ICE consent)
	ReasonRoomClosed = "room_closed" // the room closed under it
)
