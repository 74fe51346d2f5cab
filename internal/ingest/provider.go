package ingest

import (
	"strings"

	"github.com/tokenmeter/tokenmeter/internal/event"
)

// providerAliases maps spellings seen in the field to the OpenTelemetry
// `gen_ai.provider.name` well-known values, so prices are looked up under one
// name whichever instrumentation (or older semantic-convention version) sent
// the event.
var providerAliases = map[string]string{
	"xai":              "x_ai",
	"x.ai":             "x_ai",
	"grok":             "x_ai",
	"mistral":          "mistral_ai",
	"mistralai":        "mistral_ai",
	"bedrock":          "aws.bedrock",
	"aws_bedrock":      "aws.bedrock",
	"aws-bedrock":      "aws.bedrock",
	"amazon_bedrock":   "aws.bedrock",
	"gemini":           "gcp.gemini",
	"google":           "gcp.gemini",
	"google_genai":     "gcp.gen_ai",
	"vertex_ai":        "gcp.vertex_ai",
	"vertexai":         "gcp.vertex_ai",
	"az.ai.inference":  "azure.ai.inference",
	"az.ai.openai":     "azure.ai.openai",
	"azure_openai":     "azure.ai.openai",
	"azure.openai":     "azure.ai.openai",
	"watsonx":          "ibm.watsonx.ai",
	"ibm.watsonx":      "ibm.watsonx.ai",
	"ibm_watsonx_ai":   "ibm.watsonx.ai",
	"perplexity.ai":    "perplexity",
	"deepseek.ai":      "deepseek",
	"anthropic.claude": "anthropic",
}

// NormaliseProvider lower-cases and trims a provider name and maps known
// aliases to the OTel GenAI well-known value (xai -> x_ai, gemini ->
// gcp.gemini, az.ai.openai -> azure.ai.openai, ...). Unknown names are kept
// (lower-cased) so new providers still flow and are reported by pricing.
func NormaliseProvider(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if a, ok := providerAliases[p]; ok {
		return a
	}
	return p
}

// normaliseServiceTier maps provider tier names to tokenmeter's
// (standard | batch | flex | priority). Unknown values are returned as they
// came so Validate rejects them with the value in the reason.
func normaliseServiceTier(t string) string {
	switch s := strings.ToLower(strings.TrimSpace(t)); s {
	// OpenAI's "scale" tier is pre-purchased capacity: its per-token
	// list price is the standard one.
	case "", "auto", "default", "standard", "standard_only", "on_demand", "on-demand", "scale":
		if s == "" {
			return ""
		}
		return event.ServiceTierStandard
	case "batch":
		return event.ServiceTierBatch
	case "flex":
		return event.ServiceTierFlex
	case "priority":
		return event.ServiceTierPriority
	default:
		return s
	}
}
