// Package signal makes and measures the audio of handsup's benchmarks and
// audio tests, at 48 kHz mono 16-bit like the engine's frames.
//
// Synthesis: Voice, a deterministic speech-like talker (harmonics with
// moving pitch and formants, syllables, talk spurts and pauses) that makes
// Opus do the work real speech makes it do; Tone and NewTone, sines; Gated,
// a Generator that talks and falls silent in turn. Each Generator fills
// PCM frames, so a simulated client can encode what it says.
//
// Analysis: Goertzel and ToneDB measure one frequency's power, which is
// how tests check who hears whom on decoded audio; BestLag and BestFitLag
// align two signals; SNR, SegmentalSNR and BlockSNR score one against the
// other.
//
// The package knows nothing of rooms or the engine: it depends only on
// codec's constants.
package signal
