package kpemu

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// Collection types of the response envelopes.
const (
	typeKey          = "application/vnd.ibm.kms.key+json"
	typeKeyVersion   = "application/vnd.ibm.kms.key_version+json"
	typePolicy       = "application/vnd.ibm.kms.policy+json"
	typeRegistration = "application/vnd.ibm.kms.registration+json"
	typeError        = "application/vnd.ibm.kms.error+json"
	moreInfo         = "https://cloud.ibm.com/apidocs/key-protect"
)

// Reason codes of error answers.
const (
	ReasonUnauthorized       = "UNAUTHORIZED_ERR"
	ReasonMissingInstance    = "MISSING_INSTANCE_ERR"
	ReasonNotFound           = "KEY_NOT_FOUND_ERR"
	ReasonDeleted            = "KEY_DELETED_ERR"
	ReasonInvalidState       = "KEY_ACTION_INVALID_STATE_ERR"
	ReasonRotationNotAllowed = "KEY_ROTATION_NOT_PERMITTED"
	ReasonBadRequest         = "BAD_REQUEST_ERR"
	ReasonInjected           = "INJECTED_FAILURE"
)

func (e *Emulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request){
		RouteKey:              e.getKey,
		RouteMetadata:         e.getMetadata,
		RouteVersions:         e.listVersions,
		RoutePolicies:         e.getPolicies,
		RouteKeyRegistrations: e.listKeyRegistrations,
		RouteRegistrations:    e.listAllRegistrations,
		RouteRotate:           e.action(actionRotate),
		RouteDisable:          e.action(actionDisable),
		RouteEnable:           e.action(actionEnable),
		RouteWrap:             e.wrap,
		RouteUnwrap:           e.unwrap,
		RouteOtherAction:      e.otherAction,
	} {
		mux.Handle(pattern, e.api(pattern, h))
	}
	return mux
}

// ServeHTTP serves the Key Protect API and, at /identity/token, the IAM emulator.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == iamemu.TokenPath {
		e.iam.ServeHTTP(w, r)
		return
	}
	e.mux.ServeHTTP(w, r)
}

// api wraps an operation: counting, latency, injected failures, then the checks every request
// goes through (bearer token, instance header).
func (e *Emulator) api(pattern string, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls[pattern]++
		e.total++
		latency := e.latency
		var forced int
		if len(e.fail) > 0 {
			forced, e.fail = e.fail[0], e.fail[1:]
		}
		e.mu.Unlock()

		if latency > 0 {
			t := time.NewTimer(latency)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if forced != 0 {
			writeError(w, forced, http.StatusText(forced)+": injected failure", ReasonInjected, "Injected failure")
			return
		}
		if !e.iam.Valid(r.Header.Get("Authorization")) {
			writeError(w, http.StatusUnauthorized, "Unauthorized: The user does not have access to the specified resource",
				ReasonUnauthorized, "Unauthorized: The user does not have access to the specified resource")
			return
		}
		switch inst := r.Header.Get("bluemix-instance"); inst {
		case e.instance:
		case "":
			writeError(w, http.StatusBadRequest, "Bad Request: bluemix-instance header is required",
				ReasonMissingInstance, "The bluemix-instance header is missing")
			return
		default:
			writeError(w, http.StatusUnauthorized, "Unauthorized: The user does not have access to the specified resource",
				ReasonUnauthorized, "Unauthorized: The user does not have access to the specified resource")
			return
		}
		h(w, r)
	})
}

// --- JSON shapes (the field names keyprotect-go-client decodes) ---

type envelope struct {
	Metadata  metadata `json:"metadata"`
	Resources any      `json:"resources"`
}

type metadata struct {
	CollectionType  string `json:"collectionType"`
	CollectionTotal int    `json:"collectionTotal"`
	TotalCount      *int   `json:"totalCount,omitempty"`
}

type versionJSON struct {
	ID           string    `json:"id"`
	CreationDate time.Time `json:"creationDate"`
}

type rotationJSON struct {
	Enabled  bool `json:"enabled"`
	Interval int  `json:"interval_month,omitempty"`
}

type keyJSON struct {
	Type           string         `json:"type"`
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	State          State          `json:"state"`
	CRN            string         `json:"crn"`
	AlgorithmType  string         `json:"algorithmType"`
	CreatedBy      string         `json:"createdBy"`
	CreationDate   time.Time      `json:"creationDate"`
	LastUpdateDate time.Time      `json:"lastUpdateDate"`
	LastRotateDate *time.Time     `json:"lastRotateDate,omitempty"`
	KeyVersion     versionJSON    `json:"keyVersion"`
	Extractable    bool           `json:"extractable"`
	Imported       bool           `json:"imported"`
	Deleted        bool           `json:"deleted"`
	DeletionDate   *time.Time     `json:"deletionDate,omitempty"`
	DualAuthDelete map[string]any `json:"dualAuthDelete"`
	Rotation       *rotationJSON  `json:"rotation,omitempty"`
}

type policyJSON struct {
	Type           string       `json:"type"`
	CRN            string       `json:"crn"`
	CreatedBy      string       `json:"createdBy"`
	CreationDate   time.Time    `json:"creationDate"`
	UpdatedBy      string       `json:"updatedBy"`
	LastUpdateDate time.Time    `json:"lastUpdateDate"`
	Rotation       rotationJSON `json:"rotation"`
}

type registrationJSON struct {
	KeyID              string      `json:"keyId"`
	ResourceCRN        string      `json:"resourceCrn"`
	CreatedBy          string      `json:"createdBy"`
	CreationDate       time.Time   `json:"creationDate"`
	UpdatedBy          string      `json:"updatedBy"`
	LastUpdated        time.Time   `json:"lastUpdated"`
	PreventKeyDeletion bool        `json:"preventKeyDeletion"`
	KeyVersion         versionJSON `json:"keyVersion"`
}

type reasonJSON struct {
	Code     string `json:"code"`
	Message  string `json:"message"`
	Status   int    `json:"status"`
	MoreInfo string `json:"moreInfo"`
}

type errorJSON struct {
	ErrorMsg string       `json:"errorMsg"`
	Reasons  []reasonJSON `json:"reasons"`
}

const emulatorUser = "IBMid-kpemu"

func (e *Emulator) keyJSONLocked(k *key) keyJSON {
	v := k.current()
	j := keyJSON{
		Type: typeKey, ID: k.id, Name: k.name, State: k.state, CRN: k.crn, AlgorithmType: "AES",
		CreatedBy: emulatorUser, CreationDate: k.created, LastUpdateDate: k.updated,
		KeyVersion:     versionJSON{ID: v.id, CreationDate: v.created},
		DualAuthDelete: map[string]any{"enabled": false},
		Deleted:        k.state == StateDestroyed,
	}
	if !k.lastRotate.IsZero() {
		t := k.lastRotate
		j.LastRotateDate = &t
	}
	if !k.deletedAt.IsZero() {
		t := k.deletedAt
		j.DeletionDate = &t
	}
	if k.policy != nil {
		j.Rotation = &rotationJSON{Enabled: k.policy.enabled, Interval: k.policy.months}
	}
	return j
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeCollection(w http.ResponseWriter, collectionType string, items any, n int, total *int) {
	writeJSON(w, http.StatusOK, envelope{Metadata: metadata{CollectionType: collectionType, CollectionTotal: n, TotalCount: total}, Resources: items})
}

// writeError writes Key Protect's error body.
func writeError(w http.ResponseWriter, status int, msg, code, reason string) {
	writeJSON(w, status, envelope{
		Metadata:  metadata{CollectionType: typeError, CollectionTotal: 1},
		Resources: []errorJSON{{ErrorMsg: msg, Reasons: []reasonJSON{{Code: code, Message: reason, Status: status, MoreInfo: moreInfo}}}},
	})
}

func notFound(w http.ResponseWriter) {
	writeError(w, http.StatusNotFound, "Not Found: Key could not be found. Please see `reasons` for more details.",
		ReasonNotFound, "Key does not exist")
}

func deleted(w http.ResponseWriter) {
	writeError(w, http.StatusGone, "Gone: The key has been deleted. Please see `reasons` for more details.",
		ReasonDeleted, "Key has already been deleted: Please delete references to this key")
}

// lookup returns the key the path names, with the emulator locked; on false it has answered
// 404 and unlocked.
func (e *Emulator) lookup(w http.ResponseWriter, r *http.Request) (*key, bool) {
	e.mu.Lock()
	k, ok := e.keys[r.PathValue("id")]
	if !ok {
		e.mu.Unlock()
		notFound(w)
	}
	return k, ok
}

func (e *Emulator) getMetadata(w http.ResponseWriter, r *http.Request) {
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	j := e.keyJSONLocked(k)
	e.mu.Unlock()
	writeCollection(w, typeKey, []keyJSON{j}, 1, nil)
}

func (e *Emulator) getKey(w http.ResponseWriter, r *http.Request) {
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	j, gone := e.keyJSONLocked(k), k.state == StateDestroyed
	e.mu.Unlock()
	if gone {
		deleted(w)
		return
	}
	writeCollection(w, typeKey, []keyJSON{j}, 1, nil)
}

// page reads limit and offset; on false it has answered 400.
type page struct {
	limit, offset int
	total         bool
}

func readPage(w http.ResponseWriter, r *http.Request) (page, bool) {
	q := r.URL.Query()
	p := page{limit: DefaultLimit}
	for name, dst := range map[string]*int{"limit": &p.limit, "offset": &p.offset} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || (name == "limit" && (n < 1 || n > MaxLimit)) {
			writeError(w, http.StatusBadRequest, "Bad Request: invalid query parameter "+name, ReasonBadRequest,
				"The "+name+" query parameter is invalid")
			return page{}, false
		}
		*dst = n
	}
	p.total = q.Get("totalCount") == "true"
	return p, true
}

func pageOf[T any](items []T, p page) ([]T, *int) {
	n := len(items)
	lo := min(p.offset, n)
	hi := min(lo+p.limit, n)
	out := items[lo:hi]
	if out == nil {
		out = []T{}
	}
	if p.total {
		return out, &n
	}
	return out, nil
}

func (e *Emulator) listVersions(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	vs := make([]versionJSON, 0, len(k.versions))
	for i := len(k.versions) - 1; i >= 0; i-- { // newest first
		vs = append(vs, versionJSON{ID: k.versions[i].id, CreationDate: k.versions[i].created})
	}
	e.mu.Unlock()
	out, total := pageOf(vs, p)
	writeCollection(w, typeKeyVersion, out, len(out), total)
}

func (e *Emulator) getPolicies(w http.ResponseWriter, r *http.Request) {
	which := r.URL.Query().Get("policy")
	if which != "" && which != "rotation" && which != "dualAuthDelete" {
		writeError(w, http.StatusBadRequest, "Bad Request: invalid policy type", ReasonBadRequest, "Unknown policy "+which)
		return
	}
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	var out []policyJSON
	if k.policy != nil && which != "dualAuthDelete" {
		out = append(out, policyJSON{
			Type: typePolicy, CRN: k.crn, CreatedBy: emulatorUser, CreationDate: k.policy.created,
			UpdatedBy: emulatorUser, LastUpdateDate: k.policy.updated,
			Rotation: rotationJSON{Enabled: k.policy.enabled, Interval: k.policy.months},
		})
	}
	e.mu.Unlock()
	if out == nil {
		out = []policyJSON{}
	}
	writeCollection(w, typePolicy, out, len(out), nil)
}

func registrationsOf(k *key) []*registration {
	regs := make([]*registration, 0, len(k.regs))
	for _, r := range k.regs {
		regs = append(regs, r)
	}
	slices.SortFunc(regs, func(a, b *registration) int { return a.seq - b.seq })
	return regs
}

// crnFilter returns a matcher for urlEncodedResourceCRNQuery: exact, or a prefix ending in *.
func crnFilter(q string) func(string) bool {
	if q == "" {
		return func(string) bool { return true }
	}
	if prefix, ok := strings.CutSuffix(q, "*"); ok {
		return func(crn string) bool { return strings.HasPrefix(crn, prefix) }
	}
	return func(crn string) bool { return crn == q }
}

func (e *Emulator) listRegistrations(w http.ResponseWriter, r *http.Request, keys []*key) {
	p, ok := readPage(w, r)
	if !ok {
		e.mu.Unlock()
		return
	}
	match := crnFilter(r.URL.Query().Get("urlEncodedResourceCRNQuery"))
	var out []registrationJSON
	for _, k := range keys {
		for _, reg := range registrationsOf(k) {
			if !match(reg.resourceCRN) {
				continue
			}
			out = append(out, registrationJSON{
				KeyID: k.id, ResourceCRN: reg.resourceCRN, CreatedBy: emulatorUser, CreationDate: reg.created,
				UpdatedBy: emulatorUser, LastUpdated: reg.updated, PreventKeyDeletion: true,
				KeyVersion: versionJSON{ID: reg.version.id, CreationDate: reg.version.created},
			})
		}
	}
	e.mu.Unlock()
	res, total := pageOf(out, p)
	writeCollection(w, typeRegistration, res, len(res), total)
}

func (e *Emulator) listKeyRegistrations(w http.ResponseWriter, r *http.Request) {
	k, ok := e.lookup(w, r)
	if !ok {
		return
	}
	e.listRegistrations(w, r, []*key{k})
}

func (e *Emulator) listAllRegistrations(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	keys := make([]*key, 0, len(e.order))
	for _, id := range e.order {
		keys = append(keys, e.keys[id])
	}
	e.listRegistrations(w, r, keys)
}

type actionKind int

const (
	actionRotate actionKind = iota
	actionDisable
	actionEnable
)

func (e *Emulator) action(kind actionKind) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		k, ok := e.lookup(w, r)
		if !ok {
			return
		}
		defer e.mu.Unlock()
		if k.state == StateDestroyed {
			deleted(w)
			return
		}
		invalid := func(msg string) {
			writeError(w, http.StatusConflict, "Conflict: "+msg+" Please see `reasons` for more details.",
				ReasonInvalidState, "Key is not in a valid state")
		}
		switch kind {
		case actionRotate:
			if k.state != StateActive {
				invalid("Key is not in active state: Key could not be rotated.")
				return
			}
			if !k.lastRotate.IsZero() && e.clock.Now().Sub(k.lastRotate) < RotationInterval {
				writeError(w, http.StatusConflict, "Conflict: Action could not be performed on key. Please see reasons for more details.",
					ReasonRotationNotAllowed, "This root key has been rotated within the last hour. Only one 'rotate' action per hour is permitted")
				return
			}
			e.rotateLocked(k)
		case actionDisable:
			if k.state != StateActive {
				invalid("Key is not in active state: Key could not be disabled.")
				return
			}
			e.setStateLocked(k, StateSuspended)
		case actionEnable:
			if k.state != StateSuspended {
				invalid("Key is not in suspended state: Key could not be enabled.")
				return
			}
			e.setStateLocked(k, StateActive)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (e *Emulator) otherAction(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest, "Bad Request: the emulator does not support action "+r.PathValue("action"),
		ReasonBadRequest, "Unsupported action")
}
