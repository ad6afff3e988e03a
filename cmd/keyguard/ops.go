package main

// Operator commands: status, backup list / show / create / delete, plan-restore and prune.
//
// They read the same environment as the runner job (runtime.Load with config.FnRunner, which
// needs no bearer token):
//
//   - KEYGUARD_COS_ENDPOINT, KEYGUARD_COS_BUCKET (required), KEYGUARD_COS_REGION,
//     KEYGUARD_COS_PREFIX, and either KEYGUARD_COS_INSTANCE_CRN (IAM, with KEYGUARD_API_KEY) or
//     KEYGUARD_COS_HMAC_KEY_ID and KEYGUARD_COS_HMAC_SECRET;
//   - KEYGUARD_EN_URL, KEYGUARD_EN_INSTANCE_ID, KEYGUARD_EN_SOURCE_ID (required; only backup
//     create sends anything);
//   - KEYGUARD_API_KEY (IBM Cloud API key; KEYGUARD_TRUSTED_PROFILE works only inside Code
//     Engine), KEYGUARD_IAM_URL (default IBM Cloud IAM);
//   - KEYGUARD_FLEET_FILE (a local fleet policy) or KEYGUARD_FLEET_KEY (the policy object in COS,
//     default config/fleet.yaml).
//
// Every command parses its arguments before reading the environment, so a usage error is
// reported as one (exit code 2) whatever the configuration.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// opsUsage is the part of the command's usage that lists the operator commands.
const opsUsage = `  status [-json] [db...]
          per database: key, rotation window, run in flight, last outcomes, retries, last decision
  backup list [-json] <db>
          the catalog entries of db, oldest first
  backup show [-json] <db> <timestamp>
          one catalog entry in full and its restore chain
  backup create [-type full|incremental|delta] [-mode online|offline] [-reason text] <db>
          ask the scheduler for a backup now (it may refuse; keyguard status shows the outcome)
  backup delete [-force] <db> <timestamp>
          delete one backup and its images if no other backup builds on it and retention allows
  plan-restore [-json] [-at RFC3339-time] <db>
          the images, Db2 commands and notes of a restore to the latest point or to -at
  prune [-dry-run] <db>
          apply the retention policy of db: print what is kept and dropped, delete what is dropped

  The operator commands read KEYGUARD_COS_*, KEYGUARD_EN_*, KEYGUARD_API_KEY (or COS HMAC keys)
  and KEYGUARD_FLEET_FILE or KEYGUARD_FLEET_KEY, like the runner job.
`

// ops carries what the operator commands use. Production builds it from the environment
// (opsFromEnv); tests fill the fields.
type ops struct {
	objs   objstore.Store
	fleet  config.Source
	sender outbox.Sender
	out    io.Writer
	now    func() time.Time
	newID  func() string
	user   string // who asks, for BackupRequested.RequestedBy
}

// opsAction runs a parsed operator command.
type opsAction func(ctx context.Context, o *ops) error

// usageError is a bad command line (exit code 2). A nil err means help was asked for.
type usageError struct {
	err   error
	usage string
}

func (e *usageError) Error() string {
	if e.err == nil {
		return "help requested"
	}
	return e.err.Error()
}

func (e *usageError) Unwrap() error { return e.err }

// errRefused marks a deletion the retention rules forbid.
var errRefused = errors.New("refused")

// runOps parses an operator command line, then builds the clients from getenv and runs it.
func runOps(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	act, err := parseOps(args)
	if err != nil {
		return err
	}
	o, err := opsFromEnv(getenv, out)
	if err != nil {
		return err
	}
	return act(ctx, o)
}

// opsFromEnv builds ops from the runner's environment (see the comment at the top of the file).
func opsFromEnv(getenv func(string) string, out io.Writer) (*ops, error) {
	cfg, err := runtime.Load(config.FnRunner, getenv)
	if err != nil {
		return nil, fmt.Errorf("the operator commands read the runner job's environment: %w", err)
	}
	objs, err := cfg.Objects()
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	fleet, err := cfg.Fleet(objs)
	if err != nil {
		return nil, err
	}
	cfg.Function = "cli" // the CloudEvents source: keyguard/cli
	send, err := cfg.Sender(slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("event notifications: %w", err)
	}
	user := getenv("USER")
	if user == "" {
		user = "operator"
	}
	return &ops{objs: objs, fleet: fleet, sender: send, out: out, now: func() time.Time { return time.Now().UTC() },
		newID: randomID, user: user}, nil
}

// randomID returns a notification id no other request uses.
func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "keyguard-cli-" + hex.EncodeToString(b)
}

// parseOps turns an operator command line (without "keyguard") into its action.
func parseOps(args []string) (opsAction, error) {
	if len(args) == 0 {
		return nil, &usageError{err: errors.New("missing command"), usage: opsUsage}
	}
	switch args[0] {
	case "status":
		return parseStatus(args[1:])
	case "plan-restore":
		return parsePlanRestore(args[1:])
	case "prune":
		return parsePrune(args[1:])
	case "backup":
		if len(args) < 2 {
			return nil, &usageError{err: errors.New("backup: missing subcommand (list, show, create, delete)"), usage: opsUsage}
		}
		switch args[1] {
		case "-h", "-help", "--help", "help":
			return nil, &usageError{usage: opsUsage}
		case "list":
			return parseBackupList(args[2:])
		case "show":
			return parseBackupShow(args[2:])
		case "create":
			return parseBackupCreate(args[2:])
		case "delete":
			return parseBackupDelete(args[2:])
		}
		return nil, &usageError{err: fmt.Errorf("backup: unknown subcommand %q (list, show, create, delete)", args[1]), usage: opsUsage}
	}
	return nil, &usageError{err: fmt.Errorf("unknown command %q", args[0]), usage: opsUsage}
}

// flags is a command's flag set with its synopsis.
type flags struct {
	*flag.FlagSet
	synopsis string
}

func newFlags(name, synopsis string) flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return flags{FlagSet: fs, synopsis: synopsis}
}

func (f flags) usage() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "usage: keyguard %s\n", f.synopsis)
	f.SetOutput(&b)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
	return b.String()
}

func (f flags) fail(format string, args ...any) error {
	return &usageError{err: fmt.Errorf("%s: %s", f.Name(), fmt.Sprintf(format, args...)), usage: f.usage()}
}

// parse parses args, checks that there are lo to hi positional arguments (hi < 0: no limit) and
// that the first dbs of them (dbs < 0: all) name databases.
func (f flags) parse(args []string, lo, hi, dbs int) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &usageError{usage: f.usage()}
		}
		return f.fail("%v", err)
	}
	switch n := f.NArg(); {
	case n < lo:
		return f.fail("missing arguments")
	case hi >= 0 && n > hi:
		return f.fail("unexpected argument %q (flags go before the arguments)", f.Arg(hi))
	}
	for i, a := range f.Args() {
		if dbs >= 0 && i >= dbs {
			break
		}
		if err := state.ValidateDatabase(a); err != nil {
			return f.fail("%v", err)
		}
	}
	return nil
}

func (f flags) timestamp(i int) (string, error) {
	ts := f.Arg(i)
	if !catalog.ValidTimestamp(ts) {
		return "", f.fail("timestamp %q: want the 14 digits of a Db2 image timestamp (yyyymmddhhmmss)", ts)
	}
	return ts, nil
}

func parseStatus(args []string) (opsAction, error) {
	f := newFlags("status", "status [-json] [db...]")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parse(args, 0, -1, -1); err != nil {
		return nil, err
	}
	dbs := f.Args()
	return func(ctx context.Context, o *ops) error { return o.status(ctx, dbs, *asJSON) }, nil
}

func parseBackupList(args []string) (opsAction, error) {
	f := newFlags("backup list", "backup list [-json] <db>")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parse(args, 1, 1, 1); err != nil {
		return nil, err
	}
	db := f.Arg(0)
	return func(ctx context.Context, o *ops) error { return o.backupList(ctx, db, *asJSON) }, nil
}

func parseBackupShow(args []string) (opsAction, error) {
	f := newFlags("backup show", "backup show [-json] <db> <timestamp>")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parse(args, 2, 2, 1); err != nil {
		return nil, err
	}
	ts, err := f.timestamp(1)
	if err != nil {
		return nil, err
	}
	db := f.Arg(0)
	return func(ctx context.Context, o *ops) error { return o.backupShow(ctx, db, ts, *asJSON) }, nil
}

func parseBackupCreate(args []string) (opsAction, error) {
	f := newFlags("backup create", "backup create [-type full|incremental|delta] [-mode online|offline] [-reason text] <db>")
	typ := f.String("type", "full", "backup type: full, incremental or delta")
	mode := f.String("mode", "", "online or offline (default: the database's mode)")
	reason := f.String("reason", "", "why, for the record")
	if err := f.parse(args, 1, 1, 1); err != nil {
		return nil, err
	}
	req := events.BackupRequested{Database: f.Arg(0), Type: events.BackupType(*typ), Mode: events.Mode(*mode), Reason: *reason}
	if !req.Type.Valid() {
		return nil, f.fail("-type %q: want full, incremental or delta", *typ)
	}
	if req.Mode != "" && !req.Mode.Valid() {
		return nil, f.fail("-mode %q: want online or offline", *mode)
	}
	return func(ctx context.Context, o *ops) error { return o.backupCreate(ctx, req) }, nil
}

func parseBackupDelete(args []string) (opsAction, error) {
	f := newFlags("backup delete", "backup delete [-force] <db> <timestamp>")
	force := f.Bool("force", false, "allow going below the retention policy's keep_fulls (never below one full, never breaking a chain)")
	if err := f.parse(args, 2, 2, 1); err != nil {
		return nil, err
	}
	ts, err := f.timestamp(1)
	if err != nil {
		return nil, err
	}
	db := f.Arg(0)
	return func(ctx context.Context, o *ops) error { return o.backupDelete(ctx, db, ts, *force) }, nil
}

func parsePlanRestore(args []string) (opsAction, error) {
	f := newFlags("plan-restore", "plan-restore [-json] [-at RFC3339-time] <db>")
	asJSON := f.Bool("json", false, "print JSON")
	at := f.String("at", "", "restore to this point in time (RFC 3339, e.g. 2026-11-25T10:00:00Z); default: the latest")
	if err := f.parse(args, 1, 1, 1); err != nil {
		return nil, err
	}
	var pit time.Time
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return nil, f.fail("-at %q: want an RFC 3339 time such as 2026-11-25T10:00:00Z", *at)
		}
		pit = t
	}
	db := f.Arg(0)
	return func(ctx context.Context, o *ops) error { return o.planRestore(ctx, db, pit, *asJSON) }, nil
}

func parsePrune(args []string) (opsAction, error) {
	f := newFlags("prune", "prune [-dry-run] <db>")
	dry := f.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := f.parse(args, 1, 1, 1); err != nil {
		return nil, err
	}
	db := f.Arg(0)
	return func(ctx context.Context, o *ops) error { return o.prune(ctx, db, *dry) }, nil
}

// dbStatus is the -json form of one database's status: the state's operator-facing fields.
type dbStatus struct {
	Database            string                `json:"database"`
	InFleet             bool                  `json:"in_fleet"`
	HasState            bool                  `json:"has_state"`
	Revision            int64                 `json:"revision,omitempty"`
	Key                 *state.KeyInfo        `json:"key,omitempty"`
	Window              *state.RotationWindow `json:"rotation_window,omitempty"`
	Run                 *state.Run            `json:"run,omitempty"`
	LastSuccess         *state.Outcome        `json:"last_success,omitempty"`
	LastFailure         *state.Outcome        `json:"last_failure,omitempty"`
	ConsecutiveFailures int                   `json:"consecutive_failures"`
	NextRetry           *state.Retry          `json:"next_retry,omitempty"`
	NeedFull            bool                  `json:"need_full"`
	NeedFullReason      string                `json:"need_full_reason,omitempty"`
	LastDecision        *state.Decision       `json:"last_decision,omitempty"`
	PendingAlerts       int                   `json:"pending_alerts"`
}

// status prints the state of the named databases, or of every database in the fleet policy or
// with a state object.
func (o *ops) status(ctx context.Context, dbs []string, asJSON bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	states := state.NewObjectStore(o.objs)
	names := dbs
	if len(names) == 0 {
		if names, err = states.Databases(ctx); err != nil {
			return err
		}
		for _, d := range fleet.Databases {
			names = append(names, d.Name)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	}
	out := make([]dbStatus, 0, len(names))
	for _, db := range names {
		_, inFleet := fleet.Database(db)
		st, _, err := states.Get(ctx, db)
		switch {
		case errors.Is(err, state.ErrNotFound) && !inFleet:
			return fmt.Errorf("database %s: not in the fleet policy and no state", db)
		case errors.Is(err, state.ErrNotFound):
			out = append(out, dbStatus{Database: db, InFleet: true})
			continue
		case err != nil:
			return err
		}
		out = append(out, dbStatus{
			Database: db, InFleet: inFleet, HasState: true, Revision: st.Revision, Key: &st.Key, Window: st.Window, Run: st.Run,
			LastSuccess: st.LastSuccess, LastFailure: st.LastFailure, ConsecutiveFailures: st.ConsecutiveFailures,
			NextRetry: st.NextRetry, NeedFull: st.NeedFull, NeedFullReason: st.NeedFullReason, LastDecision: st.LastDecision,
			PendingAlerts: len(st.PendingAlerts),
		})
	}
	if asJSON {
		return o.json(out)
	}
	if len(out) == 0 {
		_, err := fmt.Fprintln(o.out, "no databases in the fleet policy")
		return err
	}
	tw := o.table()
	for i, s := range out {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		printStatus(tw, s)
	}
	return tw.Flush()
}

func printStatus(w io.Writer, s dbStatus) {
	head := s.Database
	if !s.InFleet {
		head += " (not in the fleet policy)"
	}
	fmt.Fprintln(w, head)
	if !s.HasState {
		fmt.Fprintln(w, "  no state yet (the scheduler writes it on its first tick)")
		return
	}
	row := func(k, v string) { fmt.Fprintf(w, "  %s\t%s\n", k, v) }
	key := fmt.Sprintf("%s version %s, %s", short(keyID(s.Key.CRN)), short(s.Key.Version), orText(string(s.Key.State), "state unknown"))
	if s.Key.Blocked {
		key += ", BACKUPS BLOCKED"
	}
	row("key", key)
	if w := s.Window; w != nil {
		row("rotation window", fmt.Sprintf("open since %s, to version %s, until %s (not before %s)",
			utc(w.OpenedAt), short(w.ToVersion), utc(w.MaxCloseAt), utc(w.MinCloseAt)))
	} else {
		row("rotation window", "none")
	}
	if r := s.Run; r != nil {
		v := fmt.Sprintf("%s: %s %s, attempt %d, since %s, lease until %s", r.ID, r.Type, r.Mode, r.Attempt, utc(r.StartedAt), utc(r.LeaseUntil))
		if r.Suspect {
			v += ", SUSPECT (a rotation began during the run)"
		}
		row("run in flight", v)
	} else {
		row("run in flight", "none")
	}
	if r := s.LastSuccess; r != nil {
		row("last success", fmt.Sprintf("%s %s %s, key version %s", utc(r.At), r.Type, r.RunID, short(r.KeyVersion)))
	} else {
		row("last success", "never")
	}
	if r := s.LastFailure; r != nil {
		v := fmt.Sprintf("%s %s %s", utc(r.At), r.Type, r.RunID)
		if r.Class != "" {
			v += ", " + string(r.Class)
		}
		if r.Message != "" {
			v += ": " + r.Message
		}
		row("last failure", v)
	} else {
		row("last failure", "none")
	}
	row("consecutive failures", fmt.Sprint(s.ConsecutiveFailures))
	if r := s.NextRetry; r != nil {
		row("next retry", fmt.Sprintf("%s %s, attempt %d", utc(r.At), r.Type, r.Attempt))
	} else {
		row("next retry", "none")
	}
	switch {
	case s.NeedFull && s.NeedFullReason != "":
		row("next backup", "full: "+s.NeedFullReason)
	case s.NeedFull:
		row("next backup", "full")
	default:
		row("next backup", "as scheduled")
	}
	if d := s.LastDecision; d != nil {
		v := utc(d.At) + " " + d.Action
		if d.Type != "" {
			v += " " + string(d.Type)
		}
		row("last decision", v+": "+d.Reason)
	} else {
		row("last decision", "none")
	}
	row("pending alerts", fmt.Sprint(s.PendingAlerts))
}

// entries lists db's catalog; an empty catalog is an error naming the database.
func (o *ops) entries(ctx context.Context, db string) ([]catalog.Entry, error) {
	list, err := catalog.New(o.objs).List(ctx, db)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no backups of %s in the catalog", db)
	}
	return list, nil
}

func (o *ops) backupList(ctx context.Context, db string, asJSON bool) error {
	list, err := catalog.New(o.objs).List(ctx, db)
	if err != nil {
		return err
	}
	if asJSON {
		return o.json(list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintf(o.out, "no backups of %s in the catalog\n", db)
		return err
	}
	tw := o.table()
	fmt.Fprintln(tw, "TIMESTAMP\tTYPE\tMODE\tSCOPE\tSIZE\tKEY VERSION\tVERIFIED\tPARENT")
	for _, e := range list {
		typ := string(e.Type)
		if e.IsDiscarded() {
			typ += " (discarded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ImageTimestamp, typ, e.Mode, e.Scope, size(e.SizeBytes),
			short(e.KeyVersion), yesNo(e.Verification.Verified), orDash(e.ParentTimestamp))
	}
	return tw.Flush()
}

// showJSON is the -json form of backup show.
type showJSON struct {
	Entry      catalog.Entry `json:"entry"`
	Chain      []string      `json:"chain,omitempty"`
	ChainError string        `json:"chain_error,omitempty"`
}

func (o *ops) backupShow(ctx context.Context, db, ts string, asJSON bool) error {
	list, err := o.entries(ctx, db)
	if err != nil {
		return err
	}
	e, ok := find(list, ts)
	if !ok {
		return fmt.Errorf("backup %s of %s: %w", ts, db, catalog.ErrNotFound)
	}
	chain, cerr := catalog.Chain(list, ts)
	if asJSON {
		v := showJSON{Entry: e}
		for _, c := range chain {
			v.Chain = append(v.Chain, c.Name())
		}
		if cerr != nil {
			v.ChainError = cerr.Error()
		}
		return o.json(v)
	}
	tw := o.table()
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("database", e.Database)
	row("timestamp", e.ImageTimestamp)
	row("type", string(e.Type))
	row("mode", string(e.Mode))
	row("scope", string(e.Scope))
	if len(e.Tablespaces) > 0 {
		row("tablespaces", strings.Join(e.Tablespaces, ", "))
	}
	row("parent", orDash(e.ParentTimestamp))
	row("started", utc(e.StartedAt))
	row("ended", utc(e.EndedAt))
	row("size", fmt.Sprintf("%s (%d bytes)", size(e.SizeBytes), e.SizeBytes))
	if e.LogRange.First != "" {
		row("logs", e.LogRange.First+" to "+orDash(e.LogRange.Last))
	}
	row("key", e.KeyCRN)
	row("key version", orDash(e.KeyVersion))
	v := e.Verification
	switch {
	case v.Verified:
		row("verified", fmt.Sprintf("yes, by %s at %s", v.Tool, utc(v.At)))
	default:
		row("verified", "no")
	}
	if v.Detail != "" {
		row("verification", v.Detail)
	}
	row("run", e.RunID)
	row("executor", e.Executor)
	for i, img := range e.Images {
		row(fmt.Sprintf("image %d", i+1), object(img))
	}
	if e.Keystore != nil {
		row("keystore", object(*e.Keystore))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cerr != nil {
		_, err := fmt.Fprintf(o.out, "\nrestore chain: BROKEN: %v\n", cerr)
		return err
	}
	fmt.Fprintf(o.out, "\nrestore chain (%d image%s, in restore order):\n", len(chain), plural(len(chain)))
	tw = o.table()
	for i, c := range chain {
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\tkey version %s\n", i+1, c.ImageTimestamp, c.Type, c.Mode, short(c.KeyVersion))
	}
	return tw.Flush()
}

func (o *ops) backupCreate(ctx context.Context, req events.BackupRequested) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	if _, ok := fleet.Database(req.Database); !ok {
		return fmt.Errorf("database %s is not in the fleet policy", req.Database)
	}
	// The scheduler refuses a request in these cases without telling the sender (Event
	// Notifications delivers asynchronously), so say so now; the request is sent anyway, as the
	// state may change before it arrives.
	var warn string
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, req.Database)
	switch {
	case err == nil:
		warn, _ = policy.Hold(st)
	case !errors.Is(err, state.ErrNotFound):
		return err
	}
	req.RequestedBy = "keyguard-cli:" + o.user
	id := o.newID()
	if err := o.sender.Send(ctx, id, req); err != nil {
		return fmt.Errorf("send backup request: %w", err)
	}
	fmt.Fprintf(o.out, "backup request %s sent: %s backup of %s", id, req.Type, req.Database)
	if req.Mode != "" {
		fmt.Fprintf(o.out, " (%s)", req.Mode)
	}
	fmt.Fprintln(o.out)
	if warn != "" {
		fmt.Fprintf(o.out, "warning: the scheduler will refuse it unless this changes first: %s\n", warn)
	}
	_, err = fmt.Fprintf(o.out, "run `keyguard status %s` to see the outcome: a started run shows as the run in flight and the last decision\n", req.Database)
	return err
}

// backupDelete deletes one backup and its image files, refusing (errRefused) when:
//   - another entry's restore chain needs it (always, -force or not): delete those first;
//   - a run is in flight and the image is on the newest restore chain, which the run may build on;
//   - a running restore uses it (a live lease under leases/<db>/, catalog.InUse);
//   - it is a database full and fewer than the policy's keep_fulls fulls would remain; -force
//     allows this down to one full, never to none (the last restorable chain is never deleted).
func (o *ops) backupDelete(ctx context.Context, db, ts string, force bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	pol, ok := fleet.Database(db)
	if !ok {
		return fmt.Errorf("database %s is not in the fleet policy (its retention is unknown)", db)
	}
	l, err := catalog.New(o.objs).ListReport(ctx, db)
	if err != nil {
		return err
	}
	list := l.Entries
	e, ok := find(list, ts)
	if !ok {
		return fmt.Errorf("backup %s of %s: %w", ts, db, catalog.ErrNotFound)
	}
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: not deleting %s of %s: %s", errRefused, e.Name(), db, fmt.Sprintf(format, args...))
	}
	if len(l.Skipped) > 0 {
		return refuse("the catalog holds objects this keyguard cannot read, whose chains may need it: %s", skippedKeys(l.Skipped))
	}
	if deps := dependents(list, ts); len(deps) > 0 {
		return refuse("%s build%s on it (delete %s first, newest first; -force never breaks a chain)",
			strings.Join(deps, ", "), verbS(len(deps)), pronoun(len(deps)))
	}
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, db)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if st != nil && st.Run != nil && onNewestChain(list, ts) {
		return refuse("run %s is in flight and may build on the newest restore chain, which this image is part of", st.Run.ID)
	}
	if inUse, err := catalog.New(o.objs).InUse(ctx, db, o.now()); err != nil {
		return err
	} else if inUse[ts] {
		return refuse("a running restore uses it (its lease is under %s; -force never deletes it)", catalog.LeasePrefix(db))
	}
	if e.Scope == catalog.ScopeDatabase && e.Type == events.Full {
		keep := max(pol.Retention.KeepFulls, catalog.MinKeepFulls)
		left := countFulls(list) - 1
		switch {
		case left < 1:
			return refuse("it is the last full backup, the only restorable chain (-force never deletes it)")
		case left < keep && !force:
			return refuse("%d full backup%s would remain and the retention policy keeps %d (keep_fulls); -force allows it", left, plural(left), keep)
		}
	}
	if err := catalog.New(o.objs).Delete(ctx, db, ts); err != nil {
		return err
	}
	_, err = fmt.Fprintf(o.out, "deleted %s of %s and its %s\n", e.Name(), db, files(e))
	return err
}

func skippedKeys(s []catalog.Skipped) string {
	keys := make([]string, len(s))
	for i, k := range s {
		keys[i] = k.Key
	}
	return strings.Join(keys, ", ")
}

// dependents names, newest first, the other entries whose restore chain includes ts. A broken
// chain still depends on the ancestors it links to (as Retain keeps them).
func dependents(list []catalog.Entry, ts string) []string {
	byTS := make(map[string]catalog.Entry, len(list))
	for _, e := range list {
		byTS[e.ImageTimestamp] = e
	}
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		e := list[i]
		if e.ImageTimestamp == ts {
			continue
		}
		needs := false
		if chain, err := catalog.Chain(list, e.ImageTimestamp); err == nil {
			_, needs = find(chain, ts)
		}
		// Follow the parent links too: the whole chain when it is complete, the ancestors that
		// exist when it is broken. Timestamps are local time and need not grow along a chain
		// (a fall-back hour), so the walk stops at an image already seen.
		seen := map[string]bool{e.ImageTimestamp: true}
		for p := e.ParentTimestamp; !needs && p != "" && !seen[p]; {
			if p == ts {
				needs = true
				break
			}
			seen[p] = true
			next, ok := byTS[p]
			if !ok {
				break
			}
			p = next.ParentTimestamp
		}
		if needs {
			out = append(out, e.Name())
		}
	}
	return out
}

// onNewestChain reports whether ts is on the restore chain of the newest database image.
func onNewestChain(list []catalog.Entry, ts string) bool {
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Scope != catalog.ScopeDatabase {
			continue
		}
		chain, err := catalog.Chain(list, list[i].ImageTimestamp)
		if err != nil {
			return list[i].ImageTimestamp == ts
		}
		_, on := find(chain, ts)
		return on
	}
	return false
}

func countFulls(list []catalog.Entry) int {
	n := 0
	for _, e := range list {
		if e.Scope == catalog.ScopeDatabase && e.Type == events.Full && !e.IsDiscarded() {
			n++
		}
	}
	return n
}

// planRestore prints catalog.PlanRestore's plan. Key availability comes from the state: a key
// keyguard recorded as destroyed makes every image under it unavailable; key versions are not
// checked against Key Protect (the operator command has no Key Protect client), and a note says so.
func (o *ops) planRestore(ctx context.Context, db string, pit time.Time, asJSON bool) error {
	list, err := o.entries(ctx, db)
	if err != nil {
		return err
	}
	st, _, err := state.NewObjectStore(o.objs).Get(ctx, db)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	available := func(crn, _ string) bool {
		return st == nil || crn != st.Key.CRN || st.Key.State != events.KeyDestroyed
	}
	p, err := catalog.PlanRestore(list, pit, available)
	if err != nil {
		return err
	}
	p.Notes = append(p.Notes, "key versions were not checked against Key Protect, only the key state keyguard recorded")
	if st != nil && st.Key.Blocked && st.Key.State != events.KeyDestroyed {
		p.Notes = append(p.Notes, fmt.Sprintf("the key is %s: make it active again before restoring", orText(string(st.Key.State), "not usable")))
	}
	if asJSON {
		return o.json(p)
	}
	fmt.Fprintf(o.out, "restore %s from image %s, roll forward %s\n\nimages, in restore order:\n", db, p.Target, p.RollForward)
	tw := o.table()
	for i, e := range p.Images {
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\tended %s\tkey version %s\t%s\n", i+1, e.ImageTimestamp, e.Type, e.Mode, utc(e.EndedAt),
			short(e.KeyVersion), imageKeys(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(o.out, "\nDb2 commands, once the images are where Db2 can read them:")
	for _, c := range p.Commands {
		fmt.Fprintln(o.out, "  "+c)
	}
	fmt.Fprintln(o.out, "\nnotes:")
	for _, n := range p.Notes {
		fmt.Fprintln(o.out, "  - "+n)
	}
	return nil
}

// prune applies db's retention policy: catalog.Retain with now and the images running restores
// have leased (catalog.InUse), then deletes the dropped entries newest first.
func (o *ops) prune(ctx context.Context, db string, dry bool) error {
	fleet, err := o.fleet.Fleet(ctx)
	if err != nil {
		return err
	}
	pol, ok := fleet.Database(db)
	if !ok {
		return fmt.Errorf("database %s is not in the fleet policy (its retention is unknown)", db)
	}
	l, err := catalog.New(o.objs).ListReport(ctx, db)
	if err != nil {
		return err
	}
	if len(l.Entries) == 0 {
		return fmt.Errorf("no backups of %s in the catalog", db)
	}
	now := o.now()
	inUse, err := catalog.New(o.objs).InUse(ctx, db, now)
	if err != nil {
		return fmt.Errorf("prune %s: %w", db, err)
	}
	policy := catalog.RetentionPolicy{KeepFulls: pol.Retention.KeepFulls, KeepDays: pol.Retention.KeepDays}
	keep, drop := l.Retain(policy, now, inUse)
	fmt.Fprintf(o.out, "retention of %s: keep_fulls %d, keep_days %d, at %s: keep %d, drop %d\n\n",
		db, max(policy.KeepFulls, catalog.MinKeepFulls), policy.KeepDays, utc(now), len(keep), len(drop))
	for _, sk := range l.Skipped {
		fmt.Fprintf(o.out, "unreadable %s: %s\n", sk.Key, sk.Reason)
	}
	if len(l.Skipped) > 0 {
		fmt.Fprintf(o.out, "retention is paused while the catalog holds objects this keyguard cannot read\n\n")
	}
	tw := o.table()
	fmt.Fprintln(tw, "ACTION\tTIMESTAMP\tTYPE\tENDED\tSIZE\tPARENT")
	line := func(action string, e catalog.Entry) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", action, e.ImageTimestamp, e.Type, utc(e.EndedAt), size(e.SizeBytes), orDash(e.ParentTimestamp))
	}
	for _, e := range keep {
		line("keep", e)
	}
	for _, e := range drop {
		line("drop", e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(drop) == 0:
		_, err := fmt.Fprintln(o.out, "\nnothing to delete")
		return err
	case dry:
		_, err := fmt.Fprintln(o.out, "\ndry run: nothing deleted")
		return err
	}
	fmt.Fprintln(o.out)
	c := catalog.New(o.objs)
	for _, e := range drop {
		if err := c.Delete(ctx, db, e.ImageTimestamp); err != nil {
			return fmt.Errorf("prune %s: %w", db, err)
		}
		fmt.Fprintf(o.out, "deleted %s and its %s\n", e.Name(), files(e))
	}
	return nil
}

func (o *ops) table() *tabwriter.Writer { return tabwriter.NewWriter(o.out, 0, 0, 2, ' ', 0) }

func (o *ops) json(v any) error {
	enc := json.NewEncoder(o.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func find(list []catalog.Entry, ts string) (catalog.Entry, bool) {
	for _, e := range list {
		if e.ImageTimestamp == ts {
			return e, true
		}
	}
	return catalog.Entry{}, false
}

// stamp formats t in UTC to the second.
func utc(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// keyID is the last segment of a key CRN (the key's id).
func keyID(crn string) string {
	if crn == "" {
		return "unknown key"
	}
	return crn[strings.LastIndex(crn, ":")+1:]
}

// size formats n bytes in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

func object(o catalog.Object) string {
	s := fmt.Sprintf("%s (%s)", o.Key, size(o.Size))
	if o.SHA256 != "" {
		s += " sha256 " + o.SHA256
	}
	return s
}

// files says how many files keyguard stored for e (the ones Catalog.Delete removes).
func files(e catalog.Entry) string {
	all := e.Images
	if e.Keystore != nil {
		all = append(slices.Clone(all), *e.Keystore)
	}
	n := 0
	for _, o := range all {
		if !o.External() {
			n++
		}
	}
	s := fmt.Sprintf("%d stored file%s", n, plural(n))
	if ext := len(all) - n; ext > 0 {
		s += fmt.Sprintf(" (%d external location%s left alone)", ext, plural(ext))
	}
	return s
}

// imageKeys names e's image files: all of them, or the first and how many more.
func imageKeys(e catalog.Entry) string {
	if len(e.Images) <= 2 {
		keys := make([]string, len(e.Images))
		for i, o := range e.Images {
			keys[i] = o.Key
		}
		return strings.Join(keys, ", ")
	}
	return fmt.Sprintf("%s and %d more", e.Images[0].Key, len(e.Images)-1)
}

func orText(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// short abbreviates a Key Protect version id.
func short(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return orDash(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
