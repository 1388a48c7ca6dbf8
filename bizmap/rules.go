package bizmap

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/portrait-cdp/portrait"
)

// Rule recommends an action for the cells where When holds. When is an
// expression (expr-lang) over the cell's figures (see Figures); the
// action's text may name the cell's top need and pain point as {need} and
// {pain}. A figure that is unknown for a cell (no survey answered, no next
// stage) is nil: write `nps != nil && nps < 0`.
type Rule struct {
	Name string `json:"name" yaml:"name"`
	// Stages limits the rule to these stages (empty: every stage).
	Stages  []string `json:"stages,omitempty" yaml:"stages"`
	When    string   `json:"when" yaml:"when"`
	Action  string   `json:"action" yaml:"action"` // a short key: nurture, fix, win_back...
	LabelZh string   `json:"label_zh" yaml:"label_zh"`
	LabelEn string   `json:"label_en" yaml:"label_en"`
}

// Figures a rule may read.
var Figures = []string{"customers", "share", "current", "revenue", "clv", "nps", "csat", "conversion", "drop_off",
	"median_days_to_next", "churn_probability", "expected_purchases_90d",
	"top_need", "top_need_share", "top_pain", "top_pain_share", "pain_share", "segment_size"}

// DefaultRules is the default rule set: the situations the seeds name
// (need not served, customers stuck, pain points, risk, advocates).
func DefaultRules() []Rule {
	return []Rule{
		{Name: "nurture_need", Stages: []string{"consult"}, When: "customers >= 5 && top_need_share >= 0.3 && conversion != nil && conversion < 0.5",
			Action: "nurture", LabelZh: "以「{need}」内容培育咨询客户，促成购买", LabelEn: "Nurture consulting customers with {need} content to convert them"},
		{Name: "unstick_stage", When: "customers >= 10 && drop_off != nil && drop_off >= 0.7",
			Action: "investigate_drop_off", LabelZh: "多数客户停在此阶段：检查下一步的流程与触达", LabelEn: "Most customers stop here: review the next step and how it reaches them"},
		{Name: "fix_pain_point", Stages: []string{"after_sales"}, When: "customers >= 3 && top_pain_share >= 0.2",
			Action: "fix_pain_point", LabelZh: "优先解决痛点「{pain}」，并回访受影响客户", LabelEn: "Fix the {pain} pain point first and follow up with those affected"},
		{Name: "service_recovery", When: "csat != nil && csat < 3",
			Action: "service_recovery", LabelZh: "满意度偏低：安排服务补救回访", LabelEn: "Low satisfaction: arrange service-recovery calls"},
		{Name: "win_back", Stages: []string{"purchase", "after_sales"}, When: "churn_probability != nil && churn_probability >= 0.6",
			Action: "win_back", LabelZh: "流失风险高：推送挽回优惠", LabelEn: "High churn risk: send a win-back offer"},
		{Name: "cross_sell", Stages: []string{"purchase"}, When: "expected_purchases_90d != nil && expected_purchases_90d >= 1 && top_need != nil",
			Action: "cross_sell", LabelZh: "预计近期复购：交叉推荐「{need}」相关产品", LabelEn: "Likely to buy again soon: cross-sell {need} products"},
		{Name: "referral", When: "nps != nil && nps >= 40 && customers >= 5",
			Action: "referral", LabelZh: "推荐者居多：邀请参加转介绍计划", LabelEn: "Mostly promoters: invite them to a referral programme"},
	}
}

// compiledRule is a validated rule.
type compiledRule struct {
	Rule
	prog    *vm.Program
	figures []string // the figures When reads, for the action's reason
}

var ruleNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func compileRules(rules []Rule) ([]*compiledRule, error) {
	known := map[string]bool{}
	for _, f := range Figures {
		known[f] = true
	}
	seen := map[string]bool{}
	out := make([]*compiledRule, 0, len(rules))
	for _, r := range rules {
		bad := func(format string, a ...any) error {
			return portrait.Errorf(portrait.EINVALID, "map rule %q: %s", r.Name, fmt.Sprintf(format, a...))
		}
		if !ruleNameRE.MatchString(r.Name) {
			return nil, portrait.Errorf(portrait.EINVALID, "map rule name %q: use lower case letters, digits and _", r.Name)
		}
		if seen[r.Name] {
			return nil, bad("declared twice")
		}
		seen[r.Name] = true
		if strings.TrimSpace(r.When) == "" || r.Action == "" {
			return nil, bad("needs when and action")
		}
		tree, err := expr.Compile(r.When, expr.AsBool(), expr.AllowUndefinedVariables())
		if err != nil {
			return nil, bad("when: %v", err)
		}
		c := &compiledRule{Rule: r, prog: tree}
		var unknown []string
		ast.Find(tree.Node(), func(n ast.Node) bool {
			if id, ok := n.(*ast.IdentifierNode); ok {
				if known[id.Value] {
					c.figures = appendOnce(c.figures, id.Value)
				} else if id.Value != "nil" {
					unknown = appendOnce(unknown, id.Value)
				}
			}
			return false
		})
		if len(unknown) > 0 {
			return nil, bad("when reads %s, which is not a figure (%s)", strings.Join(unknown, ", "), strings.Join(Figures, ", "))
		}
		// A rule must run on a cell of nils without failing (figures
		// unknown), as it will on empty cells.
		if _, err := expr.Run(tree, emptyCell()); err != nil {
			return nil, bad("when fails on a cell whose figures are unknown (compare with nil first): %v", err)
		}
		sort.Strings(c.figures)
		out = append(out, c)
	}
	return out, nil
}

// emptyCell is the figures of a cell with no one in it: counts are zero,
// everything else unknown.
func emptyCell() map[string]any {
	return map[string]any{"customers": 0, "share": 0.0, "current": 0, "revenue": 0.0, "segment_size": 0,
		"top_need_share": 0.0, "top_pain_share": 0.0, "pain_share": 0.0}
}

func appendOnce(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

// Action is a recommended action on a cell, with the figures that
// triggered it.
type Action struct {
	Rule    string         `json:"rule"`
	Action  string         `json:"action"`
	Label   string         `json:"label"`
	Figures map[string]any `json:"figures"`
}

func (r *compiledRule) applies(stage string) bool {
	if len(r.Stages) == 0 {
		return true
	}
	for _, s := range r.Stages {
		if s == stage {
			return true
		}
	}
	return false
}

// evaluate runs the rules on a cell's figures.
func evaluate(rules []*compiledRule, stage string, env map[string]any, needLabel, painLabel, lang string) []Action {
	out := []Action{}
	for _, r := range rules {
		if !r.applies(stage) {
			continue
		}
		ok, err := expr.Run(r.prog, env)
		if err != nil || ok != true {
			continue
		}
		figs := make(map[string]any, len(r.figures))
		for _, f := range r.figures {
			figs[f] = env[f]
		}
		label := r.LabelEn
		if lang == "zh" && r.LabelZh != "" {
			label = r.LabelZh
		}
		if label == "" {
			label = r.Action
		}
		label = strings.NewReplacer("{need}", needLabel, "{pain}", painLabel).Replace(label)
		out = append(out, Action{Rule: r.Name, Action: r.Action, Label: label, Figures: figs})
	}
	return out
}
