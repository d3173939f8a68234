"""`report` in Python: research a topic and write a report once a person approves it.

plan → fetch-sources → live state → gate `approve-report` → write-report,
step for step the Rust `examples/report` (same step names, inputs and input
hashes). Input `{"topic": "..."}`; output the report. The "model calls" are
deterministic stand-ins whose usage is recorded as if they were real.

    tidebase-host build examples/report-py/report.py -o report-py.wasm
    tidebase-host run report-py.wasm --input '{"topic": "tides"}'

The function is the one the Tidebase Python SDK runs, unchanged:
`tide.run("report", report, input={"topic": "tides"})`.
"""

from tidebase_guest import workflow


def slug(text):
    return "".join(c.lower() if c.isalnum() else "-" for c in text)


def model_usage(run, label, input_tokens, output_tokens):
    """Usage of a simulated model call, attributed to the running step."""
    return dict(
        kind="llm",
        provider="example-ai",
        model="small-1",
        label=label,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=(input_tokens + 4 * output_tokens) * 1e-6,
        step_id=getattr(run, "current_step_id", None),
    )


@workflow
def report(run, input):
    topic = (input or {}).get("topic", "").strip()
    if not topic:
        raise ValueError("topic must not be empty")

    def plan_sections():
        run.usage.record(**model_usage(run, "plan", 120, 40))
        return {"sections": [f"{s}: {topic}" for s in ("Background", "Current state", "Outlook")]}

    plan = run.step("plan", plan_sections, input={"topic": topic}, replay="auto")
    sections = plan["sections"]

    sources = run.step(
        "fetch-sources",
        lambda: [
            {"title": f"Notes on {section}", "url": f"https://sources.example/{slug(topic)}/{i}"}
            for i, section in enumerate(sections)
        ],
        input=sections,
        side_effects=["read"],
        retries=2,
    )

    run.state.set(
        {"phase": "awaiting-approval", "topic": topic, "sections": len(sections)},
        reason="research done",
    )
    run.state.patch({"sources": len(sources)}, importance="checkpoint")

    decision = run.gate(
        "approve-report",
        f"Write the report on {topic!r} from {len(sources)} sources?",
        data={"topic": topic, "sections": sections, "sources": len(sources)},
    )
    note = (decision.payload or {}).get("note")

    if not decision.approved:
        run.state.patch({"phase": "rejected", "decision": decision.decision})
        return {
            "topic": topic,
            "approved": False,
            "approvedBy": decision.actor,
            "sections": sections,
            "sources": sources,
            "body": None,
            "reviewerNote": note,
        }

    def write():
        run.usage.record(**model_usage(run, "write", 900, 600))
        body = f"# {topic}\n"
        for section, source in zip(sections, sources):
            body += f"\n## {section}\n\nSee {source['url']}.\n"
        return body

    body = run.step(
        "write-report",
        write,
        input={"topic": topic, "sections": sections},
        side_effects=["report.write"],
        idempotency_key=f"report:{slug(topic)}",
        checkpoint_invariant="the report text was stored exactly once",
    )

    run.state.patch({"phase": "done", "bytes": len(body.encode("utf-8"))})
    return {
        "topic": topic,
        "approved": True,
        "approvedBy": decision.actor,
        "sections": sections,
        "sources": sources,
        "body": body,
        "reviewerNote": note,
    }
