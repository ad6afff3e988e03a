// Package clock is the time seam of keyguard. Code that decides anything by time holds a Clock;
// production uses Real (the zero value works), tests and the accelerated simulator use Fake, whose
// time moves only when told and whose timers fire inside Advance.
package clock
