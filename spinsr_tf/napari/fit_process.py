"""The child process of the widget's fit (:func:`spinsr_tf.napari.compute.fit_to_image`):
``python -m spinsr_tf.napari.fit_process SETTINGS_JSON``.

Runs :func:`~spinsr_tf.inference.fit_image.fit_image` under the command line's signal handling,
so SIGINT (the widget's cancel) stops training at its next safe point; prints the result as one
JSON line after :data:`~spinsr_tf.napari.compute.RESULT`. Exit status: 0, 2 for a
:class:`UserError` (its message on stderr), 128 + signal when stopped.
"""

from __future__ import annotations

import json
import sys


def main(argv=None) -> int:
    from spinsr_tf.base import interrupts
    from spinsr_tf.base.errors import UserError
    from spinsr_tf.napari.compute import RESULT

    settings = json.loads((sys.argv[1:] if argv is None else argv)[0])
    try:
        with interrupts.handled():
            from spinsr_tf.inference.fit_image import fit_image

            result = fit_image(settings.pop("image"), **settings)
    except UserError as exc:
        print(f"spinsr-tf: {exc}", file=sys.stderr)
        return 2
    except interrupts.Interrupted as exc:
        return exc.exit_status
    degradation = result["degradation"]
    print(RESULT + json.dumps({"sr": str(result["sr"]), "factor": int(settings["scale"]),
                               "pixel": degradation["pixel"],
                               "uncertainty": None if result["uncertainty"] is None
                               else str(result["uncertainty"])}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
