package errkind

import "errors"

// Kind says what an error means for whoever gets it.
type Kind string

// Kinds.
const (
	// Transient: trying again later may succeed (timeouts, 429, 5xx, a lost race).
	Transient Kind = "transient"
	// Permanent: the same request will fail again.
	Permanent Kind = "permanent"
	// Configuration: the deployment or the policy is wrong; an operator must act.
	Configuration Kind = "configuration"
	// Invalid: the input is malformed or refused by a rule.
	Invalid Kind = "invalid"
)

// Kinded is implemented by errors that know their kind.
type Kinded interface {
	error
	Kind() Kind
}

// Of returns the kind of the first error in err's chain that knows its kind, or "" when none
// does (and for nil).
func Of(err error) Kind {
	var k Kinded
	if errors.As(err, &k) {
		return k.Kind()
	}
	return ""
}

// IsTransient reports whether err is of kind Transient.
func IsTransient(err error) bool { return Of(err) == Transient }

// IsPermanent reports whether trying err's operation again cannot help: kinds Permanent,
// Configuration and Invalid.
func IsPermanent(err error) bool {
	switch Of(err) {
	case Permanent, Configuration, Invalid:
		return true
	}
	return false
}

// With returns err marked as kind k (err's message unchanged; errors.Is and errors.As see
// through it). With(k, nil) is nil.
func With(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kinded{k: k, err: err}
}

type kinded struct {
	k   Kind
	err error
}

func (e *kinded) Error() string { return e.err.Error() }
func (e *kinded) Unwrap() error { return e.err }
func (e *kinded) Kind() Kind    { return e.k }
