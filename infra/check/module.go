package check

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Module is one Terraform module directory, parsed.
type Module struct {
	Dir       string
	Files     map[string]*hcl.File // by base name
	Variables map[string]*Variable
	Locals    map[string]*hclsyntax.Attribute
	Resources []*Resource // managed resources and data sources, in file order
	Outputs   map[string]*hclsyntax.Block
	Calls     map[string]*Call // module blocks
	// Providers are the required_providers entries of the terraform block, by local name.
	Providers map[string]ProviderRequirement
}

// ProviderRequirement is one required_providers entry.
type ProviderRequirement struct {
	Source, Version string
}

// Variable is a variable block.
type Variable struct {
	Name        string
	Type        cty.Type
	Defaults    *typeexpr.Defaults
	Default     hcl.Expression // nil when the variable is required
	Validations []Validation
	Block       *hclsyntax.Block
}

// Validation is one validation block of a variable.
type Validation struct {
	Condition hcl.Expression
	Message   hcl.Expression
}

// Resource is a resource or data block.
type Resource struct {
	Data    bool
	Type    string
	Name    string
	Block   *hclsyntax.Block
	Count   hcl.Expression // nil when absent
	ForEach hcl.Expression // nil when absent
}

// Addr is the resource's address without an instance key ("ibm_x.y" or "data.ibm_x.y").
func (r *Resource) Addr() string {
	if r.Data {
		return "data." + r.Type + "." + r.Name
	}
	return r.Type + "." + r.Name
}

// Call is a module block.
type Call struct {
	Name   string
	Source string
	Block  *hclsyntax.Block
}

// Load parses the .tf files of dir (not its subdirectories).
func Load(dir string) (*Module, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load module %s: %w", dir, err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tf") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("load module %s: %w", dir, err)
		}
		files[e.Name()] = src
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load module %s: no .tf files", dir)
	}
	return LoadFiles(dir, files)
}

// LoadFiles parses a module given as file name -> source; dir is used for messages and for
// path.module.
func LoadFiles(dir string, files map[string][]byte) (*Module, error) {
	m := &Module{
		Dir:       dir,
		Files:     map[string]*hcl.File{},
		Variables: map[string]*Variable{},
		Locals:    map[string]*hclsyntax.Attribute{},
		Outputs:   map[string]*hclsyntax.Block{},
		Calls:     map[string]*Call{},
		Providers: map[string]ProviderRequirement{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]bool{}
	for _, name := range names {
		f, diags := hclsyntax.ParseConfig(files[name], filepath.Join(dir, name), hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", name, diags.Error())
		}
		m.Files[name] = f
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if err := m.add(b, seen); err != nil {
				return nil, fmt.Errorf("%s: %w", b.DefRange().String(), err)
			}
		}
	}
	return m, nil
}

func (m *Module) add(b *hclsyntax.Block, seen map[string]bool) error {
	key := b.Type + " " + strings.Join(b.Labels, ".")
	if b.Type != "locals" && b.Type != "terraform" && b.Type != "provider" {
		if seen[key] {
			return fmt.Errorf("duplicate %s", key)
		}
		seen[key] = true
	}
	switch b.Type {
	case "terraform":
		return m.addTerraform(b)
	case "provider", "moved", "import", "removed", "check":
		return nil
	case "variable":
		return m.addVariable(b)
	case "locals":
		for name, a := range b.Body.Attributes {
			if _, dup := m.Locals[name]; dup {
				return fmt.Errorf("duplicate local %s", name)
			}
			m.Locals[name] = a
		}
		return nil
	case "resource", "data":
		if len(b.Labels) != 2 {
			return fmt.Errorf("%s block needs two labels", b.Type)
		}
		r := &Resource{Data: b.Type == "data", Type: b.Labels[0], Name: b.Labels[1], Block: b}
		if a, ok := b.Body.Attributes["count"]; ok {
			r.Count = a.Expr
		}
		if a, ok := b.Body.Attributes["for_each"]; ok {
			r.ForEach = a.Expr
		}
		if r.Count != nil && r.ForEach != nil {
			return fmt.Errorf("%s has both count and for_each", r.Addr())
		}
		m.Resources = append(m.Resources, r)
		return nil
	case "output":
		if len(b.Labels) != 1 {
			return fmt.Errorf("output block needs one label")
		}
		if _, ok := b.Body.Attributes["value"]; !ok {
			return fmt.Errorf("output %s has no value", b.Labels[0])
		}
		m.Outputs[b.Labels[0]] = b
		return nil
	case "module":
		if len(b.Labels) != 1 {
			return fmt.Errorf("module block needs one label")
		}
		c := &Call{Name: b.Labels[0], Block: b}
		if a, ok := b.Body.Attributes["source"]; ok {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
				return fmt.Errorf("module %s: source must be a literal string", c.Name)
			}
			c.Source = v.AsString()
		}
		m.Calls[c.Name] = c
		return nil
	}
	return fmt.Errorf("unexpected top-level block %q", b.Type)
}

// addTerraform records the required_providers of a terraform block.
func (m *Module) addTerraform(b *hclsyntax.Block) error {
	for _, rp := range b.Body.Blocks {
		if rp.Type != "required_providers" {
			continue
		}
		for name, a := range rp.Body.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() || !v.Type().IsObjectType() {
				return fmt.Errorf("required_providers %s must be a literal object", name)
			}
			var req ProviderRequirement
			if v.Type().HasAttribute("source") {
				req.Source, _ = knownString(v.GetAttr("source"))
			}
			if v.Type().HasAttribute("version") {
				req.Version, _ = knownString(v.GetAttr("version"))
			}
			m.Providers[name] = req
		}
	}
	return nil
}

func (m *Module) addVariable(b *hclsyntax.Block) error {
	if len(b.Labels) != 1 {
		return fmt.Errorf("variable block needs one label")
	}
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, Block: b}
	if a, ok := b.Body.Attributes["type"]; ok {
		ty, defaults, diags := typeexpr.TypeConstraintWithDefaults(a.Expr)
		if diags.HasErrors() {
			return fmt.Errorf("variable %s: type: %s", v.Name, diags.Error())
		}
		v.Type, v.Defaults = ty, defaults
	}
	if a, ok := b.Body.Attributes["default"]; ok {
		v.Default = a.Expr
	}
	for _, vb := range b.Body.Blocks {
		if vb.Type != "validation" {
			continue
		}
		cond, okc := vb.Body.Attributes["condition"]
		msg, okm := vb.Body.Attributes["error_message"]
		if !okc || !okm {
			return fmt.Errorf("variable %s: validation needs condition and error_message", v.Name)
		}
		v.Validations = append(v.Validations, Validation{Condition: cond.Expr, Message: msg.Expr})
	}
	m.Variables[v.Name] = v
	return nil
}

// Resource returns the resource or data source at addr ("ibm_x.y" or "data.ibm_x.y").
func (m *Module) Resource(addr string) *Resource {
	for _, r := range m.Resources {
		if r.Addr() == addr {
			return r
		}
	}
	return nil
}

// FormatProblems walks root for .tf files and reports every file that does not parse, is not
// formatted as hclwrite (and so terraform fmt) formats it, or holds an attribute whose value is
// a lone interpolation ("${x}"), which terraform fmt rewrites to x.
func FormatProblems(root string) ([]string, error) {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == ".terraform" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".tf") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		problems = append(problems, FormatSource(path, src)...)
		return nil
	})
	return problems, err
}

// FormatSource reports the formatting problems of one .tf file's source.
func FormatSource(name string, src []byte) []string {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return []string{fmt.Sprintf("%s: does not parse: %s", name, diags.Error())}
	}
	var problems []string
	if out := hclwrite.Format(src); !bytes.Equal(out, src) {
		problems = append(problems, fmt.Sprintf("%s: not formatted (run terraform fmt)", name))
	}
	_ = hclsyntax.VisitAll(f.Body.(*hclsyntax.Body), func(n hclsyntax.Node) hcl.Diagnostics {
		if a, ok := n.(*hclsyntax.Attribute); ok {
			if _, wrap := a.Expr.(*hclsyntax.TemplateWrapExpr); wrap {
				problems = append(problems, fmt.Sprintf("%s: %s: interpolation-only value (terraform fmt unwraps \"${...}\")", a.SrcRange.String(), a.Name))
			}
		}
		return nil
	})
	return problems
}
