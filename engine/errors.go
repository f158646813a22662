package engine

import "errors"

// Errors callers branch on.
var (
	ErrRoomExists        = errors.New("engine: room already exists")
	ErrNoRoom            = errors.New("engine: no such room")
	ErrParticipantExists = errors.New("engine: participant already in room")
	ErrNoParticipant     = errors.New("engine: no such participant")
	ErrRoomClosed        = errors.New("engine: room closed")
	ErrEngineClosed      = errors.New("engine: engine closed")
	ErrStageFull         = errors.New("engine: stage is full")
	ErrBadRole           = errors.New("engine: unknown role")
	ErrBadID             = errors.New("engine: id must be 1 to 128 characters")

	// Admission control's refusals (Config and RoomConfig caps).
	ErrRoomFull     = errors.New("engine: room is full")                     // RoomConfig.MaxParticipants
	ErrTooManyRooms = errors.New("engine: too many rooms")                   // Config.MaxRooms
	ErrEngineFull   = errors.New("engine: too many participants")            // Config.MaxParticipants
	ErrOverloaded   = errors.New("engine: ticks are near their time budget") // Config.MaxTickLoad

	// WriteRTP's answers for packets it drops; each is also counted.
	ErrMalformedRTP = errors.New("engine: malformed RTP packet")
	ErrPayloadType  = errors.New("engine: unexpected payload type")
	ErrNotSpeaker   = errors.New("engine: participant is not a speaker")
	ErrLeft         = errors.New("engine: participant has left")
	ErrJitterDrop   = errors.New("engine: packet dropped by the jitter buffer")
)
