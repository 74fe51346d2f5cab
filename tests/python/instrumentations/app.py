"""An app that calls OpenAI or Anthropic through one instrumentation library
and exports its spans over OTLP, as a user of that library would set it up.

  python app.py LIB PROVIDER [--stream] [--protocol http|grpc] [--calls N]
                [--scenario NAME] [--service-tier TIER] [--workflow W] [--user U]

LIB: otel       official opentelemetry-instrumentation-openai-v2 (OpenAI only)
     zerocode   no set-up in code: run under `opentelemetry-instrument`
     openlit    openlit.init(...)
     traceloop  Traceloop.init(...) (OpenLLMetry), workflow via @workflow
     plain      no instrumentation library: only the provider SDK (and
                its built-in tracing, if any)

Environment: FAKE_PROVIDER_URL (http://127.0.0.1:PORT), TM_OTLP_HTTP
(http://127.0.0.1:PORT, no path), TM_OTLP_GRPC (127.0.0.1:PORT), TM_TOKEN.
--export console prints spans instead (for looking at what a library sends).
"""
import argparse
import os
import sys

from opentelemetry import trace, baggage, context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


def make_exporter(protocol, export):
    if export == "console":
        return ConsoleSpanExporter()
    token = os.environ["TM_TOKEN"]
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=os.environ["TM_OTLP_GRPC"], insecure=True,
                                headers=(("authorization", "Bearer " + token),))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=os.environ["TM_OTLP_HTTP"] + "/v1/traces",
                            headers={"Authorization": "Bearer " + token})


def call(provider, stream, scenario, tier, stream_usage=True):
    base = os.environ["FAKE_PROVIDER_URL"]
    if provider == "openai":
        import openai
        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-fake", max_retries=0)
        kw = {}
        if tier:
            kw["service_tier"] = tier
        if stream:
            s = client.chat.completions.create(model="gpt-4o-2024-08-06", stream=True,
                                               stream_options={"include_usage": stream_usage},
                                               messages=[{"role": "user", "content": "hi"}], **kw)
            for _ in s:
                pass
        else:
            client.chat.completions.create(model="gpt-4o-2024-08-06",
                                           messages=[{"role": "user", "content": "hi"}], **kw)
        return
    import anthropic
    client = anthropic.Anthropic(base_url=base, api_key="sk-ant-fake", max_retries=0)
    kw = {"extra_headers": {"x-fake-scenario": scenario or "anthropic"}}
    if tier:
        kw["service_tier"] = tier
    if stream:
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024,
                                    messages=[{"role": "user", "content": "hi"}], **kw) as s:
            for _ in s.text_stream:
                pass
    else:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=1024,
                               messages=[{"role": "user", "content": "hi"}], **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("provider", choices=["openai", "anthropic"])
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--protocol", default="http", choices=["http", "grpc"])
    ap.add_argument("--export", default="otlp", choices=["otlp", "console"])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--scenario", default="")
    ap.add_argument("--service-tier", default="")
    ap.add_argument("--no-stream-usage", action="store_true", help="OpenAI stream without include_usage")
    ap.add_argument("--workflow", default="support-copilot")
    ap.add_argument("--user", default="u-42")
    a = ap.parse_args()

    resource = Resource.create({"service.name": "instr-test-" + a.lib, "deployment.environment.name": "test"})
    if a.export == "otlp" and a.lib in ("openlit", "zerocode"):
        # These read the standard OTEL_* exporter variables.
        token = os.environ["TM_TOKEN"]
        os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc" if a.protocol == "grpc" else "http/protobuf"
        os.environ["OTEL_EXPORTER_OTLP_HEADERS"] = "Authorization=Bearer%20" + token
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = ("http://" + os.environ["TM_OTLP_GRPC"]) if a.protocol == "grpc" else os.environ["TM_OTLP_HTTP"]
    if a.lib == "zerocode":
        # opentelemetry-instrument set up the provider, exporter and the
        # OpenAI instrumentation from OTEL_* variables before this ran.
        pass
    elif a.lib == "openlit":
        import openlit
        if a.export == "console":
            tp = TracerProvider(resource=resource)
            tp.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            trace.set_tracer_provider(tp)
        openlit.init(application_name="instr-test-openlit", environment="test", disable_metrics=True,
                     capture_message_content=False)
    elif a.lib == "traceloop":
        from traceloop.sdk import Traceloop
        Traceloop.init(app_name="instr-test-traceloop", exporter=make_exporter(a.protocol, a.export),
                       disable_batch=False, telemetry_enabled=False,
                       resource_attributes={"deployment.environment.name": "test"})
    else:
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(make_exporter(a.protocol, a.export)))
        trace.set_tracer_provider(tp)
        if a.lib == "otel":
            from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
            OpenAIInstrumentor().instrument(tracer_provider=tp)

    tracer = trace.get_tracer("instr-test-app")
    if a.lib == "traceloop":
        from traceloop.sdk import Traceloop
        from traceloop.sdk.decorators import workflow

        @workflow(name=a.workflow)
        def run_workflow():
            Traceloop.set_association_properties({"user_id": a.user})
            call(a.provider, a.stream, a.scenario, a.service_tier)

        for _ in range(a.calls):
            run_workflow()
    elif a.lib == "zerocode":
        # Zero-code users write no spans: workflow and team come from an
        # attribution rule on the resource's service.name.
        for _ in range(a.calls):
            call(a.provider, a.stream, a.scenario, a.service_tier)
    else:
        for _ in range(a.calls):
            # The workflow and user live on the app's own parent span: the
            # call's span inherits them in tokenmeter.
            with tracer.start_as_current_span("workflow " + a.workflow,
                                              attributes={"gen_ai.workflow.name": a.workflow, "user.id": a.user}):
                call(a.provider, a.stream, a.scenario, a.service_tier, not a.no_stream_usage)

    tp = trace.get_tracer_provider()
    if hasattr(tp, "force_flush"):
        tp.force_flush()
    if hasattr(tp, "shutdown"):
        tp.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
