package keyprotect

import "github.com/keyguard-dev/keyguard/events"

// StatePreActivation is Key Protect's state 0, which events has no name for. It is not usable.
const StatePreActivation events.KeyState = "pre_activation"

// StateFromCode maps Key Protect's numeric key state to its name: 0 pre-activation, 1 active,
// 2 suspended (disabled), 3 deactivated (expired), 5 destroyed (deleted). It reports false for
// any other number.
func StateFromCode(code int) (events.KeyState, bool) {
	switch code {
	case 0:
		return StatePreActivation, true
	case 1:
		return events.KeyActive, true
	case 2:
		return events.KeySuspended, true
	case 3:
		return events.KeyDeactivated, true
	case 5:
		return events.KeyDestroyed, true
	}
	return "", false
}
