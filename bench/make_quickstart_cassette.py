"""Write the quickstart's replay cassette: the model's answer for generating
``slugify`` (proctor/data/quickstart-cassettes). Run it again when the generation
prompt changes; tests/test_llm_quickstart.py fails until then.

    python bench/make_quickstart_cassette.py
"""

from __future__ import annotations

import json
import shutil

from proctor.llm.backends import Reply, Request, Usage
from proctor.llm.cassettes import RecordBackend
from proctor.llm.fake import FakeBackend
from proctor.llm.generate import build_messages
from proctor.procedures.spec import ProcedureSpec
from proctor.quickstart import QUICKSTART_MODEL, SLUG_CODE, SLUG_METADATA, quickstart_cassettes


def main() -> None:
    directory = quickstart_cassettes()
    shutil.rmtree(directory, ignore_errors=True)
    spec = ProcedureSpec.model_validate(SLUG_METADATA)
    request = Request.build(QUICKSTART_MODEL, build_messages(spec), {})
    answer = {
        "code": SLUG_CODE,
        "confidence": 0.95,
        "explanation": "Lower-cases, joins runs of other characters into dashes, trims them.",
    }
    reply = Reply(
        json.dumps(answer, indent=1),
        "stop",
        Usage(prompt_tokens=980, completion_tokens=160, total_tokens=1140),
        request_id="quickstart-1",
        model=QUICKSTART_MODEL,
    )
    path = RecordBackend(FakeBackend(), directory).write(request, reply)
    print(path)


if __name__ == "__main__":
    main()
