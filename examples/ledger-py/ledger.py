"""`ledger`: answer a list of questions under a token budget, keeping live
state and the usage ledger current.

Input `{"questions": ["..."], "budgetTokens": 5000}`. Each question is one
checkpointed step (a deterministic stand-in for a model call) whose usage is
recorded against the step; after each one the live state is patched with the
running totals, which Studio and `GET /runs/:id/state` show while the run
works. When the next answer would exceed the budget the run stops early.
The final state is saved as the labeled version `final`.

    tidebase-host build examples/ledger-py/ledger.py -o ledger.wasm
    tidebase-host run ledger.wasm --input '{"questions": ["Why tides?", "Why waves?"]}'
"""

from tidebase_guest import workflow

PRICE_IN, PRICE_OUT = 0.5e-6, 2e-6  # USD per token


def answer(question):
    """A stand-in model: token counts and text derived from the question."""
    tokens_in = 40 + 3 * len(question)
    tokens_out = 20 + len(question)
    return {"answer": f"About {question.rstrip('?').lower()}: it depends.", "in": tokens_in, "out": tokens_out}


@workflow
def ledger(run, input):
    questions = list((input or {}).get("questions") or [])
    budget = int((input or {}).get("budgetTokens", 5000))
    run.state.set({"phase": "answering", "answered": 0, "tokens": 0, "costUsd": 0.0, "budget": budget},
                  reason="started")

    answers, tokens, cost = [], 0, 0.0
    for i, question in enumerate(questions):
        estimate = answer(question)
        if tokens + estimate["in"] + estimate["out"] > budget:
            run.state.patch({"phase": "over-budget", "skipped": len(questions) - i},
                            importance="checkpoint", reason="budget reached")
            break

        def ask(question=question):
            result = answer(question)
            run.usage.record(
                kind="llm",
                provider="example-ai",
                model="small-1",
                label=f"q{i + 1}",
                input_tokens=result["in"],
                output_tokens=result["out"],
                cost_usd=result["in"] * PRICE_IN + result["out"] * PRICE_OUT,
                step_id=getattr(run, "current_step_id", None),
            )
            return result

        result = run.step(f"ask-{i + 1}", ask, input={"question": question}, replay="auto")
        answers.append({"question": question, "answer": result["answer"]})
        tokens += result["in"] + result["out"]
        cost += result["in"] * PRICE_IN + result["out"] * PRICE_OUT
        run.state.patch({"answered": len(answers), "tokens": tokens, "costUsd": round(cost, 8)})
    else:
        run.state.patch({"phase": "done"})

    run.state.save("final", reason="all answers in", created_by="ledger")
    return {"answers": answers, "tokens": tokens, "costUsd": round(cost, 8)}
