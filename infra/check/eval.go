package check

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Eval is a module evaluated for one set of input variables.
type Eval struct {
	Module    *Module
	Vars      map[string]cty.Value
	Locals    map[string]cty.Value
	Instances []*Instance // every instance of every resource and data source, in file order

	attrs     []string                  // attribute names used anywhere: the symbolic objects' shape
	instances map[*Resource][]*Instance // resolved count / for_each
	symbols   map[string]cty.Value      // symbolic value by instance address
	base      *hcl.EvalContext
}

// Instance is one instance of a resource or data source.
type Instance struct {
	Resource *Resource
	Key      cty.Value // cty.NilVal without count / for_each; a number (count) or string (for_each)
	Node
}

// Addr is the instance address, as Terraform writes it: ibm_x.y, ibm_x.y[0], ibm_x.y["k"].
func (i *Instance) Addr() string { return instanceAddr(i.Resource, i.Key) }

// KeyString is the for_each key, or "" for an instance without one.
func (i *Instance) KeyString() string {
	if i.Key == cty.NilVal || i.Key.Type() != cty.String {
		return ""
	}
	return i.Key.AsString()
}

func instanceAddr(r *Resource, key cty.Value) string {
	switch {
	case key == cty.NilVal:
		return r.Addr()
	case key.Type() == cty.Number:
		return fmt.Sprintf("%s[%s]", r.Addr(), key.AsBigFloat().Text('f', -1))
	default:
		return fmt.Sprintf("%s[%q]", r.Addr(), key.AsString())
	}
}

// Ref is a symbolic reference to an attribute of a resource instance: what a resource
// attribute evaluates to in this package.
type Ref struct {
	Addr string // instance address
	Attr string // attribute path after the address
}

func (r Ref) String() string { return "«" + r.Addr + "." + r.Attr + "»" }

var (
	refRE     = regexp.MustCompile(`«([^»]+)»`)
	refPartRE = regexp.MustCompile(`^((?:data\.)?[A-Za-z0-9_]+\.[A-Za-z0-9_-]+(?:\[(?:"[^"]*"|[0-9]+)\])?)\.(.+)$`)
)

// ParseRef returns the reference a string value starts with and the text after it.
func ParseRef(s string) (Ref, string, bool) {
	loc := refRE.FindStringSubmatchIndex(s)
	if loc == nil || loc[0] != 0 {
		return Ref{}, "", false
	}
	parts := refPartRE.FindStringSubmatch(s[loc[2]:loc[3]])
	if parts == nil {
		return Ref{}, "", false
	}
	return Ref{Addr: parts[1], Attr: parts[2]}, s[loc[1]:], true
}

// RefOf returns the reference v is, when v is a known string holding exactly one reference.
func RefOf(v cty.Value) (Ref, bool) {
	s, ok := knownString(v)
	if !ok {
		return Ref{}, false
	}
	r, rest, ok := ParseRef(s)
	return r, ok && rest == ""
}

// Evaluate evaluates m with the given input variables (by name). Variables without an input take
// their default; a required variable without an input, a failed validation, or a local, count
// or for_each that cannot be evaluated is an error.
func Evaluate(m *Module, inputs map[string]cty.Value) (*Eval, error) {
	e := &Eval{
		Module:    m,
		Vars:      map[string]cty.Value{},
		Locals:    map[string]cty.Value{},
		instances: map[*Resource][]*Instance{},
		symbols:   map[string]cty.Value{},
		attrs:     attributeNames(m),
	}
	for name := range inputs {
		if _, ok := m.Variables[name]; !ok {
			return nil, fmt.Errorf("input %s: no such variable in %s", name, m.Dir)
		}
	}
	if err := e.evalVariables(inputs); err != nil {
		return nil, err
	}
	if err := e.resolve(); err != nil {
		return nil, err
	}
	e.base = e.context()
	for _, r := range m.Resources {
		for _, inst := range e.instances[r] {
			inst.Node = Node{Body: r.Block.Body, Ctx: e.instanceContext(inst), Where: inst.Addr()}
			e.Instances = append(e.Instances, inst)
		}
	}
	return e, nil
}

func (e *Eval) evalVariables(inputs map[string]cty.Value) error {
	names := make([]string, 0, len(e.Module.Variables))
	for name := range e.Module.Variables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := e.Module.Variables[name]
		val, given := inputs[name]
		if !given {
			if v.Default == nil {
				return fmt.Errorf("variable %s is required and has no value", name)
			}
			d, diags := v.Default.Value(&hcl.EvalContext{Functions: functions(e.Module.Dir)})
			if diags.HasErrors() {
				return fmt.Errorf("variable %s: default: %s", name, diags.Error())
			}
			val = d
		}
		if v.Defaults != nil && !val.IsNull() {
			val = v.Defaults.Apply(val)
		}
		conv, err := convert.Convert(val, v.Type)
		if err != nil {
			return fmt.Errorf("variable %s: %v", name, err)
		}
		e.Vars[name] = conv
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(e.Vars)},
		Functions: functions(e.Module.Dir),
	}
	for _, name := range names {
		for _, val := range e.Module.Variables[name].Validations {
			ok, diags := val.Condition.Value(ctx)
			if diags.HasErrors() {
				return fmt.Errorf("variable %s: validation: %s", name, diags.Error())
			}
			if !ok.IsKnown() || ok.IsNull() || ok.True() {
				continue
			}
			msg, _ := val.Message.Value(ctx)
			text, _ := knownString(msg)
			return fmt.Errorf("variable %s: invalid value: %s", name, text)
		}
	}
	return nil
}

// resolve evaluates the locals and every count and for_each, repeating until nothing more
// can be evaluated: an expression that names a local or resource not yet evaluated waits
// (checked before evaluating it, so that try and can do not hide the missing value).
func (e *Eval) resolve() error {
	pendingLocals := map[string]*hclsyntax.Attribute{}
	for name, a := range e.Module.Locals {
		pendingLocals[name] = a
	}
	pendingRes := map[*Resource]bool{}
	for _, r := range e.Module.Resources {
		pendingRes[r] = true
	}
	for {
		progress := false
		last := map[string]hcl.Diagnostics{}
		ctx := e.context()
		// What ctx holds: what is evaluated during this round waits for the next one.
		doneLocals, doneRes := map[string]bool{}, map[*Resource]bool{}
		for n := range e.Locals {
			doneLocals[n] = true
		}
		for r := range e.instances {
			doneRes[r] = true
		}
		for _, r := range e.Module.Resources {
			if !pendingRes[r] {
				continue
			}
			if waiting := e.waitingFor(doneLocals, doneRes, r.Count, r.ForEach); waiting != "" {
				last[r.Addr()] = diagf(r.Block.DefRange(), "%s is not evaluated yet", waiting)
				continue
			}
			insts, diags := e.expand(r, ctx)
			if diags.HasErrors() {
				last[r.Addr()] = diags
				continue
			}
			e.instances[r] = insts
			delete(pendingRes, r)
			progress = true
		}
		for name, a := range pendingLocals {
			if waiting := e.waitingFor(doneLocals, doneRes, a.Expr); waiting != "" {
				last["local."+name] = diagf(a.Expr.Range(), "%s is not evaluated yet", waiting)
				continue
			}
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() {
				last["local."+name] = diags
				continue
			}
			e.Locals[name] = v
			delete(pendingLocals, name)
			progress = true
		}
		if len(pendingLocals) == 0 && len(pendingRes) == 0 {
			return nil
		}
		if !progress {
			keys := make([]string, 0, len(last))
			for k := range last {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var msgs []string
			for _, k := range keys {
				msgs = append(msgs, k+": "+last[k].Error())
			}
			return fmt.Errorf("cannot evaluate:\n%s", strings.Join(msgs, "\n"))
		}
	}
}

// waitingFor returns a local or resource the expressions refer to that is not among the done
// ones (its value, or its instances, in the context being evaluated in), or "".
func (e *Eval) waitingFor(doneLocals map[string]bool, doneRes map[*Resource]bool, exprs ...hcl.Expression) string {
	for _, x := range exprs {
		if x == nil {
			continue
		}
		for _, t := range x.Variables() {
			if t.RootName() == "local" && len(t) > 1 {
				if a, ok := t[1].(hcl.TraverseAttr); ok {
					if !doneLocals[a.Name] && e.Module.Locals[a.Name] != nil {
						return "local." + a.Name
					}
				}
				continue
			}
			if addr := resourceAddr(t); addr != "" {
				if r := e.Module.Resource(addr); r != nil && !doneRes[r] {
					return addr
				}
			}
		}
	}
	return ""
}

// expand evaluates a resource's count or for_each into its instances (without their nodes).
func (e *Eval) expand(r *Resource, ctx *hcl.EvalContext) ([]*Instance, hcl.Diagnostics) {
	switch {
	case r.Count != nil:
		v, diags := r.Count.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		n, err := knownInt(v)
		if err != nil || n < 0 {
			return nil, diagf(r.Count.Range(), "%s: count must be a known, non-negative number", r.Addr())
		}
		insts := make([]*Instance, n)
		for i := range insts {
			insts[i] = &Instance{Resource: r, Key: cty.NumberIntVal(int64(i))}
		}
		return insts, nil
	case r.ForEach != nil:
		v, diags := r.ForEach.Value(ctx)
		if diags.HasErrors() {
			return nil, diags
		}
		v, _ = v.UnmarkDeep()
		if !v.IsWhollyKnown() || v.IsNull() {
			return nil, diagf(r.ForEach.Range(), "%s: for_each must be known and not null", r.Addr())
		}
		var insts []*Instance
		ty := v.Type()
		switch {
		case ty.IsMapType() || ty.IsObjectType():
			for it := v.ElementIterator(); it.Next(); {
				k, _ := it.Element()
				insts = append(insts, &Instance{Resource: r, Key: k})
			}
		case ty.IsSetType():
			for it := v.ElementIterator(); it.Next(); {
				_, el := it.Element()
				if el.Type() != cty.String {
					return nil, diagf(r.ForEach.Range(), "%s: for_each over a set needs strings", r.Addr())
				}
				insts = append(insts, &Instance{Resource: r, Key: el})
			}
		default:
			return nil, diagf(r.ForEach.Range(), "%s: for_each must be a map or a set of strings, not %s", r.Addr(), ty.FriendlyName())
		}
		sort.Slice(insts, func(i, j int) bool { return insts[i].Key.AsString() < insts[j].Key.AsString() })
		return insts, nil
	}
	return []*Instance{{Resource: r, Key: cty.NilVal}}, nil
}

// context is the evaluation context with everything resolved so far.
func (e *Eval) context() *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(e.Vars),
		"local": cty.ObjectVal(e.Locals),
		"path": cty.ObjectVal(map[string]cty.Value{
			"module": cty.StringVal(e.Module.Dir),
			"root":   cty.StringVal(e.Module.Dir),
			"cwd":    cty.StringVal(e.Module.Dir),
		}),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal("default")}),
	}
	managed := map[string]map[string]cty.Value{}
	data := map[string]map[string]cty.Value{}
	for _, r := range e.Module.Resources {
		insts, ok := e.instances[r]
		if !ok {
			continue
		}
		group := managed
		if r.Data {
			group = data
		}
		if group[r.Type] == nil {
			group[r.Type] = map[string]cty.Value{}
		}
		group[r.Type][r.Name] = e.resourceValue(r, insts)
	}
	for typ, byName := range managed {
		vars[typ] = cty.ObjectVal(byName)
	}
	if len(data) > 0 {
		byType := map[string]cty.Value{}
		for typ, byName := range data {
			byType[typ] = cty.ObjectVal(byName)
		}
		vars["data"] = cty.ObjectVal(byType)
	}
	if len(e.Module.Calls) > 0 {
		calls := map[string]cty.Value{}
		for name := range e.Module.Calls {
			calls[name] = e.symbolic("module."+name, "")
		}
		vars["module"] = cty.ObjectVal(calls)
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions(e.Module.Dir)}
}

func (e *Eval) resourceValue(r *Resource, insts []*Instance) cty.Value {
	switch {
	case r.Count != nil:
		if len(insts) == 0 {
			return cty.EmptyTupleVal
		}
		vals := make([]cty.Value, len(insts))
		for i, inst := range insts {
			vals[i] = e.symbolic(inst.Addr(), r.Type)
		}
		return cty.TupleVal(vals)
	case r.ForEach != nil:
		if len(insts) == 0 {
			return cty.EmptyObjectVal
		}
		vals := map[string]cty.Value{}
		for _, inst := range insts {
			vals[inst.Key.AsString()] = e.symbolic(inst.Addr(), r.Type)
		}
		return cty.ObjectVal(vals)
	}
	return e.symbolic(insts[0].Addr(), r.Type)
}

// symbolic is the value of a resource instance: every attribute name used anywhere in the
// module reads as a reference to that attribute. A few data sources return lists; their shape
// is what the provider documents.
func (e *Eval) symbolic(addr, typ string) cty.Value {
	if v, ok := e.symbols[addr]; ok {
		return v
	}
	attrs := make(map[string]cty.Value, len(e.attrs))
	for _, a := range e.attrs {
		attrs[a] = cty.StringVal(Ref{Addr: addr, Attr: a}.String())
	}
	if shape, ok := dataShapes[typ]; ok && strings.HasPrefix(addr, "data.") {
		for k, v := range shape(addr) {
			attrs[k] = v
		}
	}
	v := cty.ObjectVal(attrs)
	e.symbols[addr] = v
	return v
}

// dataShapes gives data sources whose attributes are collections the configuration iterates.
var dataShapes = map[string]func(addr string) map[string]cty.Value{
	// ibm_en_sources lists the sources of an Event Notifications instance; every instance has
	// the predefined periodic-timer source (type "periodic-timer").
	"ibm_en_sources": func(addr string) map[string]cty.Value {
		periodic := cty.ObjectVal(map[string]cty.Value{
			"id":          cty.StringVal(Ref{Addr: addr, Attr: "sources[periodic-timer].id"}.String()),
			"name":        cty.StringVal("Periodic timer"),
			"description": cty.StringVal(""),
			"type":        cty.StringVal("periodic-timer"),
			"enabled":     cty.True,
			"topic_count": cty.NumberIntVal(0),
			"updated_at":  cty.StringVal(""),
		})
		return map[string]cty.Value{"sources": cty.TupleVal([]cty.Value{periodic}), "total_count": cty.NumberIntVal(1)}
	},
}

func init() {
	// ibm_en_destinations lists the destinations of an Event Notifications instance; every
	// instance has its own email destination (type "smtp_ibm").
	dataShapes["ibm_en_destinations"] = func(addr string) map[string]cty.Value {
		email := cty.ObjectVal(map[string]cty.Value{
			"id":                 cty.StringVal(Ref{Addr: addr, Attr: "destinations[smtp_ibm].id"}.String()),
			"name":               cty.StringVal("IBM Cloud Email Service"),
			"description":        cty.StringVal(""),
			"type":               cty.StringVal("smtp_ibm"),
			"subscription_count": cty.NumberIntVal(0),
			"subscription_names": cty.ListValEmpty(cty.String),
			"updated_at":         cty.StringVal(""),
		})
		return map[string]cty.Value{"destinations": cty.TupleVal([]cty.Value{email}), "total_count": cty.NumberIntVal(1)}
	}
}

// PeriodicTimerSource is the symbolic id of the periodic-timer source read through the
// ibm_en_sources data source at addr.
func PeriodicTimerSource(dataAddr string) string {
	return Ref{Addr: dataAddr, Attr: "sources[periodic-timer].id"}.String()
}

func (e *Eval) instanceContext(inst *Instance) *hcl.EvalContext {
	ctx := e.base.NewChild()
	switch {
	case inst.Key == cty.NilVal:
	case inst.Resource.Count != nil:
		ctx.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": inst.Key})}
	default:
		value := inst.Key
		if fe, diags := inst.Resource.ForEach.Value(e.base); !diags.HasErrors() {
			fe, _ = fe.UnmarkDeep()
			switch {
			case fe.Type().IsObjectType():
				value = fe.GetAttr(inst.Key.AsString())
			case fe.Type().IsMapType():
				value = fe.Index(inst.Key)
			}
		}
		ctx.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": inst.Key, "value": value})}
	}
	return ctx
}

// Resources returns the instances of managed resources of type typ.
func (e *Eval) Resources(typ string) []*Instance {
	var out []*Instance
	for _, i := range e.Instances {
		if !i.Resource.Data && i.Resource.Type == typ {
			out = append(out, i)
		}
	}
	return out
}

// Lookup returns the instance at addr, or nil.
func (e *Eval) Lookup(addr string) *Instance {
	for _, i := range e.Instances {
		if i.Addr() == addr {
			return i
		}
	}
	return nil
}

// Var returns an input variable's value, or a null value when the module has no such variable.
func (e *Eval) Var(name string) cty.Value {
	if v, ok := e.Vars[name]; ok {
		return v
	}
	return cty.NullVal(cty.DynamicPseudoType)
}

// Node is a body (of a resource or a nested block) with the context to evaluate it in.
type Node struct {
	Body  *hclsyntax.Body
	Ctx   *hcl.EvalContext
	Where string
}

// Has reports whether the body sets the attribute.
func (n Node) Has(name string) bool {
	_, ok := n.Body.Attributes[name]
	return ok
}

// Value evaluates an attribute; an attribute that is not set is null.
func (n Node) Value(name string) (cty.Value, error) {
	a, ok := n.Body.Attributes[name]
	if !ok {
		return cty.NullVal(cty.DynamicPseudoType), nil
	}
	v, diags := a.Expr.Value(n.Ctx)
	if diags.HasErrors() {
		return cty.DynamicVal, fmt.Errorf("%s: %s: %s", n.Where, name, diags.Error())
	}
	v, _ = v.UnmarkDeep()
	return v, nil
}

// Blocks returns the nested blocks of type typ, static ones and those a dynamic block
// generates, in source order.
func (n Node) Blocks(typ string) ([]Node, error) {
	var out []Node
	for _, b := range n.Body.Blocks {
		switch {
		case b.Type == typ:
			out = append(out, Node{Body: b.Body, Ctx: n.Ctx, Where: fmt.Sprintf("%s.%s[%d]", n.Where, typ, len(out))})
		case b.Type == "dynamic" && len(b.Labels) == 1 && b.Labels[0] == typ:
			gen, err := n.dynamic(b, typ, len(out))
			if err != nil {
				return nil, err
			}
			out = append(out, gen...)
		}
	}
	return out, nil
}

func (n Node) dynamic(b *hclsyntax.Block, typ string, first int) ([]Node, error) {
	fe, ok := b.Body.Attributes["for_each"]
	if !ok {
		return nil, fmt.Errorf("%s: dynamic %q has no for_each", n.Where, typ)
	}
	iter := typ
	if a, ok := b.Body.Attributes["iterator"]; ok {
		iter = hcl.ExprAsKeyword(a.Expr)
	}
	var content *hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == "content" {
			content = c
		}
	}
	if content == nil {
		return nil, fmt.Errorf("%s: dynamic %q has no content block", n.Where, typ)
	}
	v, diags := fe.Expr.Value(n.Ctx)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s: dynamic %q: for_each: %s", n.Where, typ, diags.Error())
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		return nil, fmt.Errorf("%s: dynamic %q: for_each must be a known collection", n.Where, typ)
	}
	var out []Node
	for it := v.ElementIterator(); it.Next(); {
		k, el := it.Element()
		ctx := n.Ctx.NewChild()
		ctx.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": el})}
		out = append(out, Node{Body: content.Body, Ctx: ctx, Where: fmt.Sprintf("%s.%s[%d]", n.Where, typ, first+len(out))})
	}
	return out, nil
}

// attributeNames collects every attribute name traversed anywhere in the module.
func attributeNames(m *Module) []string {
	set := map[string]bool{}
	add := func(t hcl.Traversal) {
		for _, step := range t {
			if a, ok := step.(hcl.TraverseAttr); ok {
				set[a.Name] = true
			}
		}
	}
	for _, f := range m.Files {
		_ = hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(node hclsyntax.Node) hcl.Diagnostics {
			switch x := node.(type) {
			case *hclsyntax.ScopeTraversalExpr:
				add(x.Traversal)
			case *hclsyntax.RelativeTraversalExpr:
				add(x.Traversal)
			}
			return nil
		})
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func diagf(rng hcl.Range, format string, args ...any) hcl.Diagnostics {
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: fmt.Sprintf(format, args...), Subject: &rng}}
}

// knownString returns v as a Go string when it is a known, non-null string (or converts to one).
func knownString(v cty.Value) (string, bool) {
	if v == cty.NilVal {
		return "", false
	}
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || !s.IsKnown() || s.IsNull() {
		return "", false
	}
	return s.AsString(), true
}

func knownInt(v cty.Value) (int, error) {
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() {
		return 0, fmt.Errorf("not known")
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		return 0, err
	}
	i, acc := n.AsBigFloat().Int64()
	if acc != 0 {
		return 0, fmt.Errorf("not an integer")
	}
	return int(i), nil
}

// knownBool returns v as a Go bool; ok is false when v is unknown, null or not a bool.
func knownBool(v cty.Value) (bool, bool) {
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() {
		return false, false
	}
	b, err := convert.Convert(v, cty.Bool)
	if err != nil {
		return false, false
	}
	return b.True(), true
}

// stringList returns the known strings of a list, set or tuple value.
func stringList(v cty.Value) ([]string, bool) {
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		return nil, false
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, el := it.Element()
		s, ok := knownString(el)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}
