package sim

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Profile is a fault profile: how often each part of the platform misbehaves, how backups fail,
// how keys rotate and what operators do. Rates are probabilities per call, per attempt or per
// delivery, or counts per year.
type Profile struct {
	Name string `json:"name"`

	// Cloud Object Storage.
	COSError     float64          `json:"cos_error"`     // a call answers 503
	COSAmbiguous float64          `json:"cos_ambiguous"` // a write is applied but its answer is lost (503, or 412 for a conditional one)
	COSBursts    float64          `json:"cos_bursts"`    // 503 / slow-down bursts per day
	COSBurstLen  [2]time.Duration `json:"cos_burst_len"`
	COSBurstErr  float64          `json:"cos_burst_error"` // error probability inside a burst
	COSBurstLat  [2]time.Duration `json:"cos_burst_latency"`
	COSOutages   float64          `json:"cos_outages"` // per year, every call fails
	COSOutageLen [2]time.Duration `json:"cos_outage_len"`
	ListLag      time.Duration    `json:"list_lag"` // a write shows in listings after up to this

	// Key Protect.
	KP429       float64          `json:"kp_429"`
	KPOutages   float64          `json:"kp_outages"`
	KPOutageLen [2]time.Duration `json:"kp_outage_len"`

	// Event Notifications: an attempt fails, the notification is lost outright, duplicated or
	// delayed (hence reordered); during an outage nothing is accepted or delivered and the
	// periodic timer is silent.
	ENAttemptFail float64          `json:"en_attempt_fail"`
	ENDrop        float64          `json:"en_drop"`
	ENDup         float64          `json:"en_duplicate"`
	ENDelay       float64          `json:"en_delay"`
	ENMaxDelay    time.Duration    `json:"en_max_delay"`
	ENOutages     float64          `json:"en_outages"`
	ENOutageLen   [2]time.Duration `json:"en_outage_len"`

	// Crash is the probability that an invocation dies right before or after an effectful step
	// (a write, a delete, a start, a publish) or before it answers.
	Crash float64 `json:"crash"`

	// Backups, per attempt.
	Transient  float64          `json:"transient"`
	Permanent  float64          `json:"permanent"`
	Hang       float64          `json:"hang"`    // the job never reports (Code Engine kills it after jobMaxTime)
	Discard    float64          `json:"discard"` // Db2 writes the image, verification or upload fails
	ConfigEps  float64          `json:"config_episodes"`
	ConfigLen  [2]time.Duration `json:"config_len"` // per database per year: every backup fails (log archive full, disk full)
	CEStartErr float64          `json:"ce_start_error"`

	// Keys.
	PolicyMonths   int              `json:"policy_months"`    // Key Protect rotation policy
	Manual         float64          `json:"manual_rotations"` // per key per year
	SlowRewrap     float64          `json:"slow_rewrap"`      // re-wrap outlasts the maximum window
	CloudLogs      float64          `json:"cloud_logs"`       // a rotation also reaches keyguard as a Cloud Logs alert
	CloudLogsNoVer float64          `json:"cloud_logs_no_version"`
	Suspensions    float64          `json:"suspensions"` // per key per year
	SuspensionLen  [2]time.Duration `json:"suspension_len"`

	// Operators, per database per year.
	Requests float64 `json:"requests"`
	Restores float64 `json:"restores"`
	Deletes  float64 `json:"deletes"`
}

// Profiles are the named fault profiles.
var Profiles = map[string]Profile{
	"none": {
		Name: "none", PolicyMonths: 3, Manual: 1, CloudLogs: 0.8, Requests: 2, Restores: 2, Deletes: 1,
	},
	"typical": {
		Name:     "typical",
		COSError: 0.0005, COSAmbiguous: 0.0002, COSBursts: 1, COSBurstLen: [2]time.Duration{time.Minute, 5 * time.Minute}, COSBurstErr: 0.3,
		COSBurstLat: [2]time.Duration{200 * time.Millisecond, 2 * time.Second}, COSOutages: 2, COSOutageLen: [2]time.Duration{20 * time.Minute, time.Hour},
		ListLag: 2 * time.Second,
		KP429:   0.005, KPOutages: 2, KPOutageLen: [2]time.Duration{15 * time.Minute, time.Hour},
		ENAttemptFail: 0.002, ENDrop: 0.001, ENDup: 0.002, ENDelay: 0.01, ENMaxDelay: 2 * time.Minute, ENOutages: 2,
		ENOutageLen: [2]time.Duration{10 * time.Minute, 40 * time.Minute},
		Crash:       0.0005,
		Transient:   0.02, Permanent: 0.001, Hang: 0.002, Discard: 0.003, ConfigEps: 0.5, ConfigLen: [2]time.Duration{2 * time.Hour, 12 * time.Hour},
		CEStartErr:   0.002,
		PolicyMonths: 3, Manual: 1, SlowRewrap: 0.02, CloudLogs: 0.8, CloudLogsNoVer: 0.3, Suspensions: 0.1,
		SuspensionLen: [2]time.Duration{30 * time.Minute, 2 * time.Hour},
		Requests:      2, Restores: 2, Deletes: 1,
	},
	"hostile": {
		Name:     "hostile",
		COSError: 0.01, COSAmbiguous: 0.005, COSBursts: 6, COSBurstLen: [2]time.Duration{time.Minute, 10 * time.Minute}, COSBurstErr: 0.6,
		COSBurstLat: [2]time.Duration{time.Second, 6 * time.Second}, COSOutages: 12, COSOutageLen: [2]time.Duration{30 * time.Minute, 2 * time.Hour},
		ListLag: 30 * time.Second,
		KP429:   0.05, KPOutages: 12, KPOutageLen: [2]time.Duration{30 * time.Minute, 3 * time.Hour},
		ENAttemptFail: 0.05, ENDrop: 0.02, ENDup: 0.05, ENDelay: 0.1, ENMaxDelay: 10 * time.Minute, ENOutages: 12,
		ENOutageLen: [2]time.Duration{30 * time.Minute, 2 * time.Hour},
		Crash:       0.01,
		Transient:   0.08, Permanent: 0.005, Hang: 0.01, Discard: 0.02, ConfigEps: 3, ConfigLen: [2]time.Duration{2 * time.Hour, 24 * time.Hour},
		CEStartErr:   0.02,
		PolicyMonths: 1, Manual: 6, SlowRewrap: 0.1, CloudLogs: 0.9, CloudLogsNoVer: 0.4, Suspensions: 2,
		SuspensionLen: [2]time.Duration{30 * time.Minute, 6 * time.Hour},
		Requests:      12, Restores: 12, Deletes: 6,
	},
}

// ProfileNamed returns the named profile.
func ProfileNamed(name string) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		names := make([]string, 0, len(Profiles))
		for n := range Profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return Profile{}, fmt.Errorf("unknown fault profile %q (one of %s)", name, strings.Join(names, ", "))
	}
	return p, nil
}
