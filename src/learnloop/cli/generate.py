"""learnloop generate: ask a generative model from the terminal (logged like any answer)."""

from __future__ import annotations

from typing import Annotated

import typer

from learnloop.cli.common import ArtifactOpt, DbOpt, HomeOpt, ModelOpt, console, open_services, settings_for


def generate(
    prompt: Annotated[str, typer.Argument(help="What to ask (one user turn).")],
    home: HomeOpt,
    model: ModelOpt,
    database_url: DbOpt = None,
    artifact_url: ArtifactOpt = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens", min=1, help="Default 128.")] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="0: greedy.")] = 0.7,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Reproducible sampling.")] = None,
) -> None:
    """Generate an answer with the model's champion, streamed as it comes; it is logged, and the
    prediction id printed after it takes feedback."""
    from learnloop.feedback.generate import GenerateInput

    with open_services(settings_for(home, database_url, artifact_url=artifact_url)) as services:
        services.ingest.start()
        with console.status(f"loading {model} (a base is converted once per home, the first time)"):
            services.cache.route(model)
        service = services.generation
        generation = service.start(
            model, GenerateInput(prompt=prompt, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
        )
        try:
            for delta in generation.handle:
                typer.echo(delta, nl=False)
        except KeyboardInterrupt:
            generation.cancel()
        generated = service.finish(generation, generation.handle.result())
        typer.echo()
        console.print(
            f"[dim]version {generated.version}, {generated.completion_tokens} tokens ({generated.finish_reason}), "
            f"{generated.latency_ms / 1000:.1f} s; prediction id {generated.prediction_id}[/]"
        )
