"""Tracing: one OpenTelemetry span per run, the task's own spans its children
(``tickwork[otel]``; this example also uses ``opentelemetry-sdk`` to keep the spans)."""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tickwork import BackgroundScheduler
from tickwork.tracing import instrument

exporter = InMemorySpanExporter()  # in production: an OTLP exporter
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


def send_invoices() -> None:
    with trace.get_tracer("billing").start_as_current_span("render invoices"):
        pass  # a child of the run's span


scheduler = BackgroundScheduler()
tracer = instrument(scheduler)  # the global provider; or instrument(scheduler, provider)
scheduler.add_task(send_invoices, id="invoices")
with scheduler:
    time.sleep(0.3)

spans = {span.name: span for span in exporter.get_finished_spans()}
run, child = spans["run send_invoices"], spans["render invoices"]
assert run.attributes is not None
assert run.attributes["tickwork.run.outcome"] == "success"
assert child.parent is not None
assert run.context is not None
assert child.parent.span_id == run.context.span_id
tracer.uninstrument()
