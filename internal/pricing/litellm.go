package pricing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// LiteLLMOptions control ImportLiteLLM.
type LiteLLMOptions struct {
	// ValidFrom stamps every imported entry (YYYY-MM-DD). Required: LiteLLM's
	// file has no effective dates, so the importer must be told from when.
	ValidFrom string
	// ReadOn is the date the file was downloaded (YYYY-MM-DD).
	ReadOn string
	// Source is where the file came from (URL or path), stamped on each row.
	Source string
	// Version tags the resulting catalogue (price_source).
	Version string
	// Providers limits the import to these OTel provider names (after
	// mapping, e.g. openai, anthropic, gcp.gemini); empty imports all.
	Providers []string
}

// litellmProviders maps litellm_provider to OpenTelemetry gen_ai.provider.name.
var litellmProviders = map[string]string{
	"openai": "openai", "text-completion-openai": "openai",
	"anthropic": "anthropic",
	"gemini":    "gcp.gemini", "vertex_ai-language-models": "gcp.vertex_ai", "vertex_ai-anthropic_models": "gcp.vertex_ai",
	"bedrock": "aws.bedrock", "bedrock_converse": "aws.bedrock",
	"azure": "azure.ai.openai", "azure_ai": "azure.ai.inference",
	"mistral":  "mistral_ai",
	"deepseek": "deepseek",
	"xai":      "x_ai", "groq": "groq", "cohere": "cohere", "cohere_chat": "cohere", "perplexity": "perplexity",
}

// aboveRe matches LiteLLM's long-context keys, e.g. input_cost_per_token_above_200k_tokens.
var aboveRe = regexp.MustCompile(`^(.*)_above_(\d+)k_tokens$`)

// ImportLiteLLM converts LiteLLM's model_prices_and_context_window.json into a
// catalogue. Per-token USD figures become per-million figures exactly (the
// JSON number's text is parsed as a decimal, never a float). Mapped fields:
//
//	input_cost_per_token, output_cost_per_token          -> standard input, output
//	cache_read_input_token_cost                          -> cache_read
//	cache_creation_input_token_cost                      -> cache_write (5 minutes)
//	cache_creation_input_token_cost_above_1hr            -> cache_write_1h
//	output_cost_per_reasoning_token                      -> reasoning
//	*_above_<N>k_tokens                                  -> standard_long_context, threshold N×1000
//	*_batches / *_flex / *_priority                      -> batch / flex / priority tiers
//	output_cost_per_image, input_cost_per_second (audio) -> image, audio_second
//	search_context_cost_per_query.search_context_size_medium -> web_search
//
// Entries without both input and output per-token prices (image-only,
// per-pixel, rerank ...) are skipped and listed in skipped with the reason.
func ImportLiteLLM(r io.Reader, opt LiteLLMOptions) (cat *CatalogueFile, skipped []string, err error) {
	if opt.ValidFrom == "" {
		return nil, nil, fmt.Errorf("valid_from is required: LiteLLM's file has no effective dates")
	}
	if _, err := parseInstant(opt.ValidFrom); err != nil {
		return nil, nil, fmt.Errorf("valid_from: %w", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("litellm json: %w", err)
	}
	keep := map[string]bool{}
	for _, p := range opt.Providers {
		keep[p] = true
	}
	cat = &CatalogueFile{Version: opt.Version, Currency: "USD"}
	if cat.Version == "" {
		cat.Version = "litellm-" + opt.ReadOn
	}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	seen := map[[2]string]bool{}
	for _, key := range names {
		if key == "sample_spec" {
			continue
		}
		f := raw[key]
		lp, _ := f["litellm_provider"].(string)
		provider, ok := litellmProviders[lp]
		if !ok {
			provider = lp
		}
		if provider == "" {
			skipped = append(skipped, key+": no litellm_provider")
			continue
		}
		if len(keep) > 0 && !keep[provider] {
			continue
		}
		model := key
		if i := strings.Index(key, "/"); i > 0 && (key[:i] == lp || litellmProviders[key[:i]] == provider) {
			model = key[i+1:]
		}
		k := [2]string{provider, strings.ToLower(model)}
		if seen[k] {
			skipped = append(skipped, key+": duplicate of "+provider+"/"+model)
			continue
		}
		num := func(field string) (Amount, error) {
			v, ok := f[field]
			if !ok {
				return Amount{}, nil
			}
			n, ok := v.(json.Number)
			if !ok {
				return Amount{}, fmt.Errorf("%s: %s is not a number", key, field)
			}
			d, err := decimal.NewFromString(n.String())
			if err != nil {
				return Amount{}, fmt.Errorf("%s: %s: %w", key, field, err)
			}
			return Amount{D: d, Set: true}, nil
		}
		perM := func(a Amount) Amount {
			if a.Set {
				a.D = a.D.Shift(6)
			}
			return a
		}
		var ferr error
		get := func(field string) Amount {
			a, err := num(field)
			if err != nil && ferr == nil {
				ferr = err
			}
			return a
		}
		tier := func(suffix string) Rates {
			return Rates{
				Input:        perM(get("input_cost_per_token" + suffix)),
				CacheRead:    perM(get("cache_read_input_token_cost" + suffix)),
				CacheWrite:   perM(get("cache_creation_input_token_cost" + suffix)),
				CacheWrite1h: perM(get("cache_creation_input_token_cost_above_1hr" + suffix)),
				Output:       perM(get("output_cost_per_token" + suffix)),
				Reasoning:    perM(get("output_cost_per_reasoning_token" + suffix)),
			}
		}
		std := tier("")
		if !std.Input.Set || !std.Output.Set {
			skipped = append(skipped, key+": no per-token input and output price")
			continue
		}
		std.Image = get("output_cost_per_image")
		std.AudioSecond = get("input_cost_per_second")
		if sc, ok := f["search_context_cost_per_query"].(map[string]any); ok {
			if n, ok := sc["search_context_size_medium"].(json.Number); ok {
				if d, err := decimal.NewFromString(n.String()); err == nil && !d.IsZero() {
					std.WebSearch = Amount{D: d, Set: true}
				}
			}
		}
		prices := map[string]Rates{"standard": std}
		for suffix, name := range map[string]string{"_batches": "batch", "_flex": "flex", "_priority": "priority"} {
			t := tier(suffix)
			if t.Input.Set && t.Output.Set {
				prices[name] = t
			}
		}
		// Long context: every *_above_<N>k_tokens field; one threshold per model.
		var threshold int64
		long := Rates{}
		for field := range f {
			m := aboveRe.FindStringSubmatch(field)
			if m == nil {
				continue
			}
			n, _ := strconv.ParseInt(m[2], 10, 64)
			if threshold != 0 && threshold != n*1000 {
				ferr = fmt.Errorf("%s: more than one long-context threshold", key)
				break
			}
			threshold = n * 1000
			a := perM(get(field))
			switch m[1] {
			case "input_cost_per_token":
				long.Input = a
			case "output_cost_per_token":
				long.Output = a
			case "cache_read_input_token_cost":
				long.CacheRead = a
			case "cache_creation_input_token_cost":
				long.CacheWrite = a
			case "cache_creation_input_token_cost_above_1hr":
				long.CacheWrite1h = a
			case "output_cost_per_reasoning_token":
				long.Reasoning = a
			}
		}
		if ferr != nil {
			return nil, skipped, ferr
		}
		if threshold > 0 {
			// Classes without a long-context figure keep the standard one, as LiteLLM does.
			fill := func(l *Amount, s Amount) {
				if !l.Set {
					*l = s
				}
			}
			fill(&long.Input, std.Input)
			fill(&long.Output, std.Output)
			fill(&long.CacheRead, std.CacheRead)
			fill(&long.CacheWrite, std.CacheWrite)
			fill(&long.CacheWrite1h, std.CacheWrite1h)
			fill(&long.Reasoning, std.Reasoning)
			prices["standard"+LongContextSuffix] = long
		}
		seen[k] = true
		cat.Models = append(cat.Models, ModelEntry{
			Provider: provider, Model: model, ValidFrom: opt.ValidFrom, LongContextThreshold: threshold,
			Source: opt.Source, ReadOn: opt.ReadOn, Notes: "imported from LiteLLM key " + key, Prices: prices,
		})
	}
	return cat, skipped, nil
}
