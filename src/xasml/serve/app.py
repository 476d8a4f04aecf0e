"""The web application of ``xasml serve``: FastAPI routes over :class:`~xasml.serve.service.ServeService`.

One static page (``static/index.html`` and ``app.js``) with Plotly.js served from the installed
``plotly`` package (no CDN at run time); the page talks JSON to ``/api/...`` and receives new
results as server-sent events (``/api/events``).

Uploads are sent one file per request as the raw request body (``POST /api/upload?name=...``),
read up to the size limit and written only into the upload store: no multipart parser spools
them to a temporary folder elsewhere.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

from xasml.errors import MissingExtraError, SpectrumError, XasmlError

__all__ = ["create_app", "plotly_js_path"]

STATIC = Path(__file__).resolve().parent / "static"


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled with the installed ``plotly`` Python package.

    Returns
    -------
    Path
        The file, served to the page from this machine (no CDN: beamline networks are often closed).

    Raises
    ------
    MissingExtraError
        If plotly is not installed (extra ``serve``).
    """
    try:
        import plotly
    except ImportError:
        raise MissingExtraError("plotly", "serve") from None
    p = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not p.is_file():
        raise MissingExtraError("plotly (with package_data/plotly.min.js)", "serve")
    return p


def create_app(service) -> Any:
    """The FastAPI application of a started :class:`~xasml.serve.service.ServeService`.

    Parameters
    ----------
    service : ServeService

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    MissingExtraError
        Without FastAPI (extra ``serve``).
    """
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.responses import (FileResponse, JSONResponse, PlainTextResponse, Response,
                                       StreamingResponse)
    except ImportError:
        raise MissingExtraError("fastapi", "serve") from None
    from xasml.serve.export import athena_project_text, results_csv
    from xasml.serve.store import finite

    app = FastAPI(title="xasml serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    plotly_js = plotly_js_path()

    def entry_or_404(entry_id: int) -> dict:
        e = service.store.get(entry_id)
        if e is None:
            raise HTTPException(404, f"no entry {entry_id}")
        return e

    @app.exception_handler(XasmlError)
    async def xasml_error(request, exc: XasmlError):
        return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)

    @app.get("/")
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/plotly.min.js")
    def plotly():
        return FileResponse(plotly_js, media_type="application/javascript")

    @app.get("/static/{name}")
    def static(name: str):
        files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
        if name not in files:
            raise HTTPException(404, "not found")
        media = {".js": "application/javascript", ".css": "text/css", ".html": "text/html"}.get(files[name].suffix)
        return FileResponse(files[name], media_type=media)

    @app.get("/api/status")
    def status():
        return service.status()

    @app.get("/api/rows")
    def rows():
        return JSONResponse(finite(service.rows()))

    @app.get("/api/entries/{entry_id}")
    def entry(entry_id: int):
        e = entry_or_404(entry_id)
        return JSONResponse(finite({k: e[k] for k in ("id", "origin", "name", "status", "options", "result",
                                                      "updated", "analyses")}))

    @app.post("/api/entries/{entry_id}/analyse")
    async def analyse(entry_id: int, request: Request):
        entry_or_404(entry_id)
        try:
            options = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise SpectrumError("the options are not a JSON object", source="page") from None
        if not isinstance(options, dict):
            raise SpectrumError("the options are not a JSON object", source="page")
        new_id = await asyncio.get_running_loop().run_in_executor(None, service.reanalyse, entry_id, options)
        return JSONResponse(finite(entry_or_404(new_id)))

    @app.post("/api/upload")
    async def upload(request: Request, name: str = "upload"):
        limit = service.config.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise SpectrumError(f"{declared} bytes, larger than the upload limit of {limit} bytes", source=name)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise SpectrumError(f"larger than the upload limit of {limit} bytes", source=name)
            chunks.append(chunk)
        if not size:
            raise SpectrumError("empty upload", source=name)
        loop = asyncio.get_running_loop()
        path = await loop.run_in_executor(None, service.save_upload, name, b"".join(chunks))
        fut = service.submit_file("upload", path, name=Path(name).name)
        entry_id = await asyncio.wrap_future(fut)
        if entry_id is None:
            raise SpectrumError("could not be analysed (see the status line)", source=name)
        return JSONResponse(finite(entry_or_404(entry_id)))

    @app.get("/api/series")
    def series(element: str | None = None):
        return JSONResponse(finite(service.series(element)))

    @app.get("/api/events")
    async def events(request: Request):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

        def push(event: dict) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        unsubscribe = service.subscribe(push)

        async def stream():
            try:
                yield "retry: 2000\n\n"
                while True:
                    if await request.is_disconnected():
                        break
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=10)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(finite(event))}\n\n"
            finally:
                unsubscribe()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/download/results.csv")
    def download_csv():
        return PlainTextResponse(results_csv(service.rows()), media_type="text/csv",
                                 headers={"Content-Disposition": 'attachment; filename="xasml-results.csv"'})

    @app.get("/api/download/results.json")
    def download_json():
        body = json.dumps(finite(service.store.entries()), indent=1)
        return Response(body, media_type="application/json",
                        headers={"Content-Disposition": 'attachment; filename="xasml-results.json"'})

    def ok_spectra(e: dict) -> list[dict]:
        spectra = [s for s in e["result"].get("spectra") or [] if "error" not in s]
        if not spectra:
            raise HTTPException(409, f"{e['name']}: no normalised spectrum (the file could not be used)")
        return spectra

    @app.get("/api/entries/{entry_id}/spectra/{index}/normalized.xdi")
    def download_xdi(entry_id: int, index: int):
        from xasml.io.xdi import write_xdi
        from xasml.spectrum import Spectrum

        e = entry_or_404(entry_id)
        spectra = e["result"].get("spectra") or []
        if not 0 <= index < len(spectra) or "error" in spectra[index]:
            raise HTTPException(404, f"{e['name']}: no normalised spectrum {index}")
        s = spectra[index]
        c = s["curves"]
        spec = Spectrum(energy=c["energy"], mu=c["norm"], absorbing_element=s["absorbing_element"], edge=s["edge"],
                        material_id=s.get("label"), kind="norm",
                        metadata={"preprocessing": {k: s[k] for k in ("e0", "edge_step", "pre1", "pre2", "norm1",
                                                                      "norm2", "nnorm")}})
        out = write_xdi(service.export_dir / f"entry{entry_id}_{index}.xdi", spec,
                        comments=[f"normalised by xasml serve from {e['name']}"])
        fname = f"{Path(e['name']).stem}_{index}_norm.xdi"
        return FileResponse(out, media_type="text/plain", filename=fname)

    @app.get("/api/entries/{entry_id}/project.prj")
    def download_prj(entry_id: int):
        e = entry_or_404(entry_id)
        groups = [{**{k: s[k] for k in ("label", "e0", "pre1", "pre2", "norm1", "norm2", "nnorm",
                                        "absorbing_element", "edge")},
                   "energy": s["curves"]["energy"], "mu": s["curves"]["mu"]} for s in ok_spectra(e)]
        return Response(athena_project_text(groups), media_type="text/plain",
                        headers={"Content-Disposition": f'attachment; filename="{Path(e["name"]).stem}.prj"'})

    return app
