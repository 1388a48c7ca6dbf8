package jobs

// Output is a trait an analysis writes onto the profiles it scores (as an
// identify event from analytics/<kind>: writeBack).
type Output struct {
	Kind        string // the analysis: CLV, FPGrowth, KMeans or Churn
	Name        string
	Type        string // a trait type of traits/: number, string, list, object
	Description string
}

// Outputs lists every trait the analyses write. The trait schema declares
// them at start (cmd/portrait wires traits.Schema.Declare), so a tag or
// segment can name churn_probability before any run has written it: a
// churn model no better than chance writes nothing (churn), and until then
// the name was known only from the profiles that had it, so the demo's
// churn_risk tag was refused as naming an unknown trait. TestOutputsDeclared
// holds this list to what the runs write.
var Outputs = []Output{
	{CLV, "p_alive", "number", "probability the customer is still active (BG/NBD)"},
	{CLV, "expected_purchases_90d", "number", "expected purchases in the next 90 days (BG/NBD)"},
	{CLV, "expected_spend", "number", "expected amount of an order (Gamma-Gamma)"},
	{CLV, "clv_12m", "number", "predicted value of the next 12 months, discounted (BG/NBD × Gamma-Gamma)"},
	{CLV, "clv_percentile", "number", "share of buyers with a lower clv_12m, 0-100"},
	{FPGrowth, "next_best_products", "list", "products to offer next, each with the association rule behind it"},
	{FPGrowth, "next_best_products_reason", "string", "why next_best_products is empty, or empty"},
	{FPGrowth, "next_best_products_reason_code", "string", "next_best_products_reason as a code (no_purchases, no_history, owned_one, owned_many, weak_one, weak_many, no_rule), or empty"},
	{FPGrowth, "next_best_products_reason_params", "object", "the reason's parameters: n (matching rules), items and more (no_rule)"},
	{KMeans, "cluster", "number", "k-means cluster of the customer's purchase behaviour"},
	{KMeans, "cluster_description", "string", "the cluster in plain words"},
	{KMeans, "cluster_terms", "list", "cluster_description as terms: [{feature, level (high, low, very_high, very_low), z}]"},
	{Churn, "purchase_probability_90d", "number", "probability of a purchase in the next horizon (90 days by default; logistic regression)"},
	{Churn, "churn_probability", "number", "1 - purchase_probability_90d: the chance of no purchase in the next horizon"},
}
