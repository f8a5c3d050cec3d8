"""Questions to Kaggle asked in one process: `python kaggle_probe.py '<json>'` prints JSON.

Run by workbench.kaggle_cli as a script of the interpreter that has the pinned kaggle (it
imports nothing from this repository). Why not the CLI: each CLI call pays kaggle's import
(1-2 s here), and checking a notebook's inputs asks up to a dozen questions; one of them (a
notebook's current version number) the CLI cannot ask at all. The calls are the kaggle API's
own methods, the ones the CLI commands use (`datasets status`, `competitions files`,
`kernels status`), so the answers are the same.

Asked: {"datasets": [ref...], "competitions": [slug...], "kernels": [ref...],
"versions": [ref...], "lookback": N}. Answer per item: {"ok": value} or {"error": HTTP status,
"message": kaggle's message}. Versions: the current version and the states of the newest ones,
down to the first COMPLETE (at most `lookback`). A 401 aborts with the CLI's own help, exit 1.
"""

from __future__ import annotations

import json
import sys


def outcome(call) -> dict:
    from kaggle.api.kaggle_api_extended import format_http_error
    from requests.exceptions import HTTPError

    try:
        return {"ok": call()}
    except HTTPError as err:
        code = err.response.status_code if err.response is not None else 0
        if code == 401:
            raise
        return {"error": code, "message": format_http_error(err)}
    except ValueError as err:  # the API's own refusals, e.g. "Cannot access kernel ..."
        return {"error": 403 if "Cannot access" in str(err) else 400, "message": str(err)}


def kernel_versions(api, ref: str, lookback: int) -> dict:
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

    request = ApiGetKernelRequest()
    request.user_name, request.kernel_slug = ref.split("/")
    with api.build_kaggle_client() as kaggle:
        metadata = kaggle.kernels.kernels_api_client.get_kernel(request).metadata
    current = int(metadata.current_version_number or 0)
    states = {}
    for number in range(current, max(0, current - lookback), -1):
        states[number] = api.kernels_status(f"{ref}/{number}").status.name
        if states[number] == "COMPLETE":
            break
    return {"current": current, "states": states}


def answer(api, asked: dict) -> dict:
    lookback = int(asked.get("lookback", 10))

    def files(slug):
        return len(api.competition_list_files(slug, page_size=1).files or [])

    questions = {
        "datasets": api.dataset_status,
        "competitions": files,
        "kernels": lambda ref: api.kernels_status(ref).status.name,
        "versions": lambda ref: kernel_versions(api, ref, lookback),
    }
    return {
        kind: {item: outcome(lambda item=item, ask=ask: ask(item)) for item in asked.get(kind, [])}
        for kind, ask in questions.items()
    }


def main(argv: list[str]) -> int:
    from kaggle import api
    from kaggle.api.kaggle_api_extended import format_http_error, print_auth_help
    from requests.exceptions import HTTPError

    try:
        if not api._authenticated:
            api.authenticate()  # without credentials: the CLI's help, then exit 1
        print(json.dumps(answer(api, json.loads(argv[0]))))
    except HTTPError as err:
        if err.response is not None and err.response.status_code == 401:
            print_auth_help()
        else:
            print(format_http_error(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
