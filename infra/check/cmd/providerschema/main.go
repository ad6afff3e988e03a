// Command providerschema reads resource schemas from the Go source of the IBM Terraform
// provider (IBM-Cloud/terraform-provider-ibm) and writes them as infra/check/schema_ibm.go, the
// table the Terraform checks validate arguments against.
//
//	git -C terraform-provider-ibm archive v2.3.0 ibm | tar -x -C /tmp/p/v2.3.0   # and so on
//	go run ./infra/check/cmd/providerschema -out infra/check/schema_ibm.go \
//	    -src v2.3.0=/tmp/p/v2.3.0 -src v2.4.0=/tmp/p/v2.4.0 -src v2.5.0=/tmp/p/v2.5.0
//
// It records the resource types and data sources that the .tf files under -tf use. With several
// releases it keeps what every one of them accepts: an argument missing from one release is
// left out (so a configuration that sets it fails), an argument required by one is required,
// and allowed values are those every release allows.
//
// The source is read with go/parser, never compiled: a resource's schema is the composite
// literal of map[string]*schema.Schema in the function provider.go registers for its name;
// Required, Optional, Computed, MinItems, MaxItems, ConflictsWith, AtLeastOneOf, ExactlyOneOf,
// nested Elem resources and the common validators (validate.InvokeValidator entries of the
// resource's validator, validation.StringInSlice, validate.ValidateAllowedRangeInt) are
// understood. Anything else is reported on stderr so that a reader can look at it.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/keyguard-dev/keyguard/infra/check"
)

type sources []string

func (s *sources) String() string     { return strings.Join(*s, ",") }
func (s *sources) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var srcs sources
	flag.Var(&srcs, "src", "release=directory of a provider checkout (repeatable)")
	out := flag.String("out", "infra/check/schema_ibm.go", "Go file to write")
	tf := flag.String("tf", "infra", "directory whose .tf files name the resource types to record")
	flag.Parse()
	if err := run(srcs, *out, *tf); err != nil {
		fmt.Fprintln(os.Stderr, "providerschema:", err)
		os.Exit(1)
	}
}

func run(srcs []string, out, tf string) error {
	if len(srcs) == 0 {
		return fmt.Errorf("no -src given")
	}
	types, err := usedTypes(tf)
	if err != nil {
		return err
	}
	var releases []string
	perRelease := map[string]map[string]resource{}
	for _, s := range srcs {
		release, dir, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("-src %q: want release=directory", s)
		}
		p := &provider{root: dir, pkgs: map[string]*pkg{}, consts: map[string]string{}}
		if err := p.loadMaps(); err != nil {
			return fmt.Errorf("%s: %w", release, err)
		}
		got := map[string]resource{}
		for _, t := range types {
			r, err := p.resource(t)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", release, t, err)
			}
			got[t] = r
		}
		releases = append(releases, release)
		perRelease[release] = got
	}
	merged := map[string]resource{}
	for _, t := range types {
		var rs []resource
		for _, rel := range releases {
			rs = append(rs, perRelease[rel][t])
		}
		merged[t] = merge(rs)
	}
	src, err := render(releases, types, merged)
	if err != nil {
		return err
	}
	return os.WriteFile(out, src, 0o644)
}

// usedTypes lists the provider's resource types and data sources ("data.x") the .tf files use.
func usedTypes(root string) ([]string, error) {
	set := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case !d.IsDir():
			return nil
		case d.Name() == ".terraform" || d.Name() == "testdata":
			return filepath.SkipDir
		}
		tf, _ := filepath.Glob(filepath.Join(path, "*.tf"))
		if len(tf) == 0 {
			return nil
		}
		m, err := check.Load(path)
		if err != nil {
			return err
		}
		for _, r := range m.Resources {
			if !strings.HasPrefix(r.Type, "ibm_") {
				continue
			}
			if r.Data {
				set["data."+r.Type] = true
			} else {
				set[r.Type] = true
			}
		}
		return nil
	})
	var out []string
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, err
}

// arg is one argument as read from one release, or merged over several.
type arg struct {
	Block, Required, Optional, Computed bool
	MinItems, MaxItems                  int
	Allowed                             []string
	Pattern                             string
	MinLen, MaxLen                      int
	HasRange                            bool
	Min, Max                            int
	Conflicts, AtLeast, Exactly         []string
}

type resource struct {
	File string
	Args map[string]arg
}

type pkg struct {
	funcs map[string]*ast.FuncDecl
	vars  map[string]ast.Expr
}

type ctor struct {
	dir, fn  string
	logsInst bool // wrapped in logs.AddLogsInstanceFields
}

type provider struct {
	root       string
	pkgs       map[string]*pkg
	consts     map[string]string
	resources  map[string]ctor
	data       map[string]ctor
	validators map[string]ctor
	fileOf     map[*ast.FuncDecl]string
}

func (p *provider) load(dir string) (*pkg, error) {
	if k, ok := p.pkgs[dir]; ok {
		return k, nil
	}
	k := &pkg{funcs: map[string]*ast.FuncDecl{}, vars: map[string]ast.Expr{}}
	if p.fileOf == nil {
		p.fileOf = map[*ast.FuncDecl]string{}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					k.funcs[d.Name.Name] = d
					rel, _ := filepath.Rel(p.root, path)
					p.fileOf[d] = filepath.ToSlash(rel)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					vs, ok := spec.(*ast.ValueSpec)
					if !ok {
						continue
					}
					for i, n := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						k.vars[n.Name] = vs.Values[i]
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							p.consts[n.Name], _ = strconv.Unquote(bl.Value)
						}
					}
				}
			}
		}
	}
	p.pkgs[dir] = k
	return k, nil
}

// loadMaps reads provider.go's resource, data source and validator dictionaries.
func (p *provider) loadMaps() error {
	p.resources, p.data, p.validators = map[string]ctor{}, map[string]ctor{}, map[string]ctor{}
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.root, "ibm", "provider", "provider.go"), nil, 0)
	if err != nil {
		return err
	}
	imports := map[string]string{}
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := filepath.Base(path)
		if im.Name != nil {
			name = im.Name.Name
		}
		if i := strings.Index(path, "/ibm/"); i >= 0 {
			imports[name] = filepath.Join(p.root, path[i+1:])
		}
	}
	var cur map[string]ctor
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		if id, ok := kv.Key.(*ast.Ident); ok {
			switch id.Name {
			case "ResourcesMap":
				cur = p.resources
			case "DataSourcesMap":
				cur = p.data
			case "ResourceValidatorDictionary", "DataSourceValidatorDictionary":
				cur = p.validators
			}
			return true
		}
		lit, ok := kv.Key.(*ast.BasicLit)
		call, ok2 := kv.Value.(*ast.CallExpr)
		if !ok || !ok2 || cur == nil {
			return true
		}
		name, _ := strconv.Unquote(lit.Value)
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		c := ctor{}
		if sel.Sel.Name == "AddLogsInstanceFields" && len(call.Args) == 1 {
			if inner, ok := call.Args[0].(*ast.CallExpr); ok {
				if s2, ok := inner.Fun.(*ast.SelectorExpr); ok {
					sel, c.logsInst = s2, true
				}
			}
		}
		x, _ := sel.X.(*ast.Ident)
		if x == nil || imports[x.Name] == "" {
			return true
		}
		c.dir, c.fn = imports[x.Name], sel.Sel.Name
		if _, dup := cur[name]; !dup {
			cur[name] = c
		}
		return true
	})
	return nil
}

func (p *provider) resource(name string) (resource, error) {
	m, key := p.resources, name
	if rest, ok := strings.CutPrefix(name, "data."); ok {
		m, key = p.data, rest
	}
	c, ok := m[key]
	if !ok {
		return resource{}, fmt.Errorf("not registered in provider.go")
	}
	k, err := p.load(c.dir)
	if err != nil {
		return resource{}, err
	}
	fn := k.funcs[c.fn]
	if fn == nil {
		return resource{}, fmt.Errorf("function %s not found", c.fn)
	}
	lit := resourceLiteral(fn)
	if lit == nil {
		return resource{}, fmt.Errorf("%s returns no schema.Resource literal", c.fn)
	}
	sm, sk := p.schemaMap(k, field(lit, "Schema"))
	if sm == nil {
		return resource{}, fmt.Errorf("%s: schema map not resolved", c.fn)
	}
	r := resource{File: p.fileOf[fn], Args: map[string]arg{}}
	p.walk(sk, key, "", sm, r.Args)
	if c.logsInst {
		// logs.AddLogsInstanceFields adds these three to every Cloud Logs resource.
		r.Args["instance_id"] = arg{Required: true}
		r.Args["region"] = arg{Optional: true, Computed: true}
		r.Args["endpoint_type"] = arg{Optional: true}
	}
	return r, nil
}

func resourceLiteral(fn ast.Node) *ast.CompositeLit {
	var found *ast.CompositeLit
	ast.Inspect(fn, func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if found != nil || !ok {
			return found == nil
		}
		if sel, ok := cl.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Resource" && field(cl, "Schema") != nil {
			found = cl
			return false
		}
		return true
	})
	return found
}

func field(cl *ast.CompositeLit, name string) ast.Expr {
	for _, e := range cl.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && id.Name == name {
				return kv.Value
			}
		}
	}
	return nil
}

func unwrap(e ast.Expr) ast.Expr {
	for {
		switch x := e.(type) {
		case *ast.UnaryExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		default:
			return e
		}
	}
}

// schemaMap resolves an expression to the map[string]*schema.Schema literal it stands for: the
// literal itself, a variable, or a function (of this package or of ibm/flex) returning one.
func (p *provider) schemaMap(k *pkg, e ast.Expr) (*ast.CompositeLit, *pkg) {
	switch x := unwrap(e).(type) {
	case *ast.CompositeLit:
		return x, k
	case *ast.Ident:
		if v, ok := k.vars[x.Name]; ok {
			return p.schemaMap(k, v)
		}
	case *ast.CallExpr:
		target, name := k, ""
		switch f := x.Fun.(type) {
		case *ast.Ident:
			name = f.Name
		case *ast.SelectorExpr:
			name = f.Sel.Name
			if id, ok := f.X.(*ast.Ident); ok && id.Name == "flex" {
				flex, err := p.load(filepath.Join(p.root, "ibm", "flex"))
				if err != nil {
					return nil, nil
				}
				target = flex
			}
		}
		fn := target.funcs[name]
		if fn == nil {
			return nil, nil
		}
		var ret ast.Expr
		ast.Inspect(fn, func(n ast.Node) bool {
			if r, ok := n.(*ast.ReturnStmt); ok && len(r.Results) == 1 && ret == nil {
				ret = r.Results[0]
			}
			return true
		})
		if id, ok := ret.(*ast.Ident); ok {
			ret = nil
			ast.Inspect(fn, func(n ast.Node) bool {
				if as, ok := n.(*ast.AssignStmt); ok && ret == nil {
					for i, l := range as.Lhs {
						if li, ok := l.(*ast.Ident); ok && li.Name == id.Name && i < len(as.Rhs) {
							ret = as.Rhs[i]
						}
					}
				}
				return true
			})
		}
		if ret != nil {
			return p.schemaMap(target, ret)
		}
	}
	return nil, nil
}

func (p *provider) str(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.BasicLit:
		s, _ := strconv.Unquote(x.Value)
		return s
	case *ast.Ident:
		return p.consts[x.Name]
	case *ast.SelectorExpr:
		// A constant of ibm/flex, such as flex.ResourceName.
		if id, ok := x.X.(*ast.Ident); ok && id.Name == "flex" {
			if _, err := p.load(filepath.Join(p.root, "ibm", "flex")); err == nil {
				return p.consts[x.Sel.Name]
			}
		}
	}
	return ""
}

func boolField(cl *ast.CompositeLit, name string) bool {
	id, ok := field(cl, name).(*ast.Ident)
	return ok && id.Name == "true"
}

func intOf(e ast.Expr) (int, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		n, err := strconv.Atoi(x.Value)
		return n, err == nil
	case *ast.UnaryExpr:
		n, ok := intOf(x.X)
		if x.Op == token.SUB {
			n = -n
		}
		return n, ok
	case *ast.ParenExpr:
		return intOf(x.X)
	}
	return 0, false
}

func (p *provider) strList(e ast.Expr) []string {
	cl, ok := unwrap(e).(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range cl.Elts {
		out = append(out, p.str(el))
	}
	return out
}

// paths turns the provider's "a.0.b" references into dotted argument paths ("a.b").
func paths(in []string) []string {
	var out []string
	for _, s := range in {
		parts := strings.Split(s, ".")
		var keep []string
		for _, x := range parts {
			if _, err := strconv.Atoi(x); err != nil {
				keep = append(keep, x)
			}
		}
		out = append(out, strings.Join(keep, "."))
	}
	sort.Strings(out)
	return out
}

func (p *provider) walk(k *pkg, res, prefix string, m *ast.CompositeLit, out map[string]arg) {
	for _, el := range m.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		name := p.str(kv.Key)
		cl, ok := unwrap(kv.Value).(*ast.CompositeLit)
		if name == "" || !ok {
			if name != "" {
				fmt.Fprintf(os.Stderr, "%s: %s%s: schema not a literal, left out\n", res, prefix, name)
			}
			continue
		}
		a := arg{Required: boolField(cl, "Required"), Optional: boolField(cl, "Optional"), Computed: boolField(cl, "Computed")}
		a.MinItems, _ = intOf(field(cl, "MinItems"))
		a.MaxItems, _ = intOf(field(cl, "MaxItems"))
		a.Conflicts = paths(p.strList(field(cl, "ConflictsWith")))
		a.AtLeast = paths(p.strList(field(cl, "AtLeastOneOf")))
		a.Exactly = paths(p.strList(field(cl, "ExactlyOneOf")))
		if v := field(cl, "ValidateFunc"); v != nil {
			p.validation(res, prefix+name, &a, v)
		}
		var nested *ast.CompositeLit
		var nk *pkg
		if elem := field(cl, "Elem"); elem != nil {
			switch x := unwrap(elem).(type) {
			case *ast.CompositeLit:
				if sel, ok := x.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Resource" {
					nested, nk = p.schemaMap(k, field(x, "Schema"))
				} else if v := field(x, "ValidateFunc"); v != nil {
					p.validation(res, prefix+name, &a, v)
				}
			case *ast.CallExpr:
				fname := ""
				if id, ok := x.Fun.(*ast.Ident); ok {
					fname = id.Name
				}
				if fn := k.funcs[fname]; fn != nil {
					if lit := resourceLiteral(fn); lit != nil {
						nested, nk = p.schemaMap(k, field(lit, "Schema"))
					}
				}
				if nested == nil {
					fmt.Fprintf(os.Stderr, "%s: %s%s: nested schema %s not resolved\n", res, prefix, name, fname)
				}
			}
		}
		a.Block = nested != nil
		if a.Computed && !a.Optional && !a.Required {
			// An attribute the provider sets: recorded at the top level, where the
			// configuration reads it; never an argument.
			if prefix == "" {
				out[name] = arg{Computed: true}
			}
			continue
		}
		if a.MinItems > 0 {
			a.Required = true
		}
		out[prefix+name] = a
		if nested != nil {
			p.walk(nk, res, prefix+name+".", nested, out)
		}
	}
}

// validation records what a ValidateFunc restricts.
func (p *provider) validation(res, path string, a *arg, e ast.Expr) {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return
	}
	name := ""
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		name = f.Sel.Name
	case *ast.Ident:
		name = f.Name
	}
	switch name {
	case "InvokeValidator", "InvokeDataSourceValidator":
		if len(call.Args) != 2 {
			return
		}
		p.validatorEntry(res, p.str(call.Args[0]), p.str(call.Args[1]), a)
	case "StringInSlice", "ValidateAllowedStringValues":
		a.Allowed = p.strList(call.Args[0])
	case "ValidateAllowedRangeInt", "IntBetween":
		lo, ok1 := intOf(call.Args[0])
		hi, ok2 := intOf(call.Args[1])
		if ok1 && ok2 {
			a.HasRange, a.Min, a.Max = true, lo, hi
		}
	case "IntAtLeast":
		if lo, ok := intOf(call.Args[0]); ok {
			a.HasRange, a.Min, a.Max = true, lo, math.MaxInt32
		}
	case "StringLenBetween":
		lo, ok1 := intOf(call.Args[0])
		hi, ok2 := intOf(call.Args[1])
		if ok1 && ok2 {
			a.MinLen, a.MaxLen = lo, hi
		}
	case "InvokeValidatorCloudData", "ValidateCloudData":
		// a lookup in the account at plan time: nothing to record
	default:
		fmt.Fprintf(os.Stderr, "%s: %s: validator %s not recorded\n", res, path, name)
	}
}

func (p *provider) validatorEntry(res, resource, id string, a *arg) {
	c, ok := p.validators[resource]
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: no validator registered for %s\n", res, resource)
		return
	}
	k, err := p.load(c.dir)
	if err != nil || k.funcs[c.fn] == nil {
		fmt.Fprintf(os.Stderr, "%s: validator %s not found\n", res, c.fn)
		return
	}
	var entry *ast.CompositeLit
	ast.Inspect(k.funcs[c.fn], func(n ast.Node) bool {
		cl, ok := n.(*ast.CompositeLit)
		if ok && entry == nil {
			if v := field(cl, "Identifier"); v != nil && p.str(v) == id {
				entry = cl
			}
		}
		return entry == nil
	})
	if entry == nil {
		fmt.Fprintf(os.Stderr, "%s: %s: validator entry not found\n", res, id)
		return
	}
	fi := ""
	if s, ok := field(entry, "ValidateFunctionIdentifier").(*ast.SelectorExpr); ok {
		fi = s.Sel.Name
	}
	strField := func(n string) string { return p.str(field(entry, n)) }
	intField := func(n string) int { v, _ := intOf(field(entry, n)); return v }
	switch fi {
	case "ValidateAllowedStringValue", "ValidateAllowedIntValue":
		for _, v := range strings.Split(strField("AllowedValues"), ",") {
			a.Allowed = append(a.Allowed, strings.TrimSpace(v))
		}
	case "ValidateRegexpLen", "ValidateRegexp":
		a.Pattern = strField("Regexp")
		a.MinLen, a.MaxLen = intField("MinValueLength"), intField("MaxValueLength")
	case "StringLenBetween":
		a.MinLen, a.MaxLen = intField("MinValueLength"), intField("MaxValueLength")
	case "IntBetween":
		lo, err1 := strconv.Atoi(strField("MinValue"))
		hi, err2 := strconv.Atoi(strField("MaxValue"))
		if err1 == nil && err2 == nil {
			a.HasRange, a.Min, a.Max = true, lo, hi
		}
	case "ValidateCloudData":
		// a lookup in the account at plan time: nothing to record
	default:
		fmt.Fprintf(os.Stderr, "%s: %s: validator %s not recorded\n", res, id, fi)
	}
}

// merge keeps what every release accepts.
func merge(rs []resource) resource {
	out := resource{File: rs[len(rs)-1].File, Args: map[string]arg{}}
	for path, a := range rs[0].Args {
		m := a
		inAll := true
		for _, r := range rs[1:] {
			b, ok := r.Args[path]
			if !ok || b.Block != a.Block {
				inAll = false
				break
			}
			m.Computed = m.Computed && b.Computed
			m.Required = m.Required || b.Required
			if b.MaxItems > 0 && (m.MaxItems == 0 || b.MaxItems < m.MaxItems) {
				m.MaxItems = b.MaxItems
			}
			switch {
			case len(m.Allowed) == 0:
				m.Allowed = b.Allowed
			case len(b.Allowed) > 0:
				m.Allowed = intersect(m.Allowed, b.Allowed)
			}
			if m.Pattern == "" {
				m.Pattern, m.MinLen, m.MaxLen = b.Pattern, b.MinLen, b.MaxLen
			}
			if !m.HasRange && b.HasRange {
				m.HasRange, m.Min, m.Max = true, b.Min, b.Max
			}
			m.Conflicts = union(m.Conflicts, b.Conflicts)
			m.AtLeast = union(m.AtLeast, b.AtLeast)
			m.Exactly = union(m.Exactly, b.Exactly)
		}
		if inAll {
			out.Args[path] = m
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
			}
		}
	}
	return out
}

func union(a, b []string) []string {
	set := map[string]bool{}
	for _, x := range append(append([]string{}, a...), b...) {
		set[x] = true
	}
	var out []string
	for x := range set {
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

func render(releases, types []string, rs map[string]resource) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by go run ./infra/check/cmd/providerschema; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package check\n\n")
	fmt.Fprintf(&b, "// providerSchemaVersions are the IBM-Cloud/terraform-provider-ibm releases ibmSchema was read\n")
	fmt.Fprintf(&b, "// from: an argument is listed when every one of them accepts it.\n")
	fmt.Fprintf(&b, "var providerSchemaVersions = %#v\n\n", releases)
	fmt.Fprintf(&b, "// ibmSchema holds, per resource type (\"data.\" for data sources), the arguments the IBM\n")
	fmt.Fprintf(&b, "// provider accepts and what it requires of them, by dotted path.\n")
	fmt.Fprintf(&b, "var ibmSchema = map[string]resourceSchema{\n")
	for _, t := range types {
		r := rs[t]
		fmt.Fprintf(&b, "%q: {Source: %q, Args: map[string]argSchema{\n", t, r.File)
		var ps []string
		for p := range r.Args {
			ps = append(ps, p)
		}
		sort.Strings(ps)
		for _, p := range ps {
			a := r.Args[p]
			var f []string
			if a.Computed && !a.Optional && !a.Required {
				f = append(f, "Computed: true")
			}
			if a.Block {
				f = append(f, "Block: true")
			}
			if a.Required {
				f = append(f, "Required: true")
			}
			if a.Block && a.MaxItems > 0 {
				f = append(f, fmt.Sprintf("MaxItems: %d", a.MaxItems))
			}
			if len(a.Allowed) > 0 {
				f = append(f, fmt.Sprintf("Allowed: %#v", a.Allowed))
			}
			if a.Pattern != "" {
				f = append(f, fmt.Sprintf("Pattern: %q", a.Pattern))
			}
			if a.MinLen > 0 || a.MaxLen > 0 {
				f = append(f, fmt.Sprintf("MinLen: %d, MaxLen: %d", a.MinLen, a.MaxLen))
			}
			if a.HasRange {
				f = append(f, fmt.Sprintf("HasRange: true, Min: %d, Max: %d", a.Min, a.Max))
			}
			if len(a.Conflicts) > 0 {
				f = append(f, fmt.Sprintf("ConflictsWith: %#v", a.Conflicts))
			}
			if len(a.AtLeast) > 0 {
				f = append(f, fmt.Sprintf("AtLeastOneOf: %#v", a.AtLeast))
			}
			if len(a.Exactly) > 0 {
				f = append(f, fmt.Sprintf("ExactlyOneOf: %#v", a.Exactly))
			}
			fmt.Fprintf(&b, "%q: {%s},\n", p, strings.Join(f, ", "))
		}
		fmt.Fprintf(&b, "}},\n")
	}
	fmt.Fprintf(&b, "}\n")
	return format.Source(b.Bytes())
}
