"""Echo cancellation in a simulated room: ERLE per condition, near-end loss in double talk, CPU.

The room, its conditions and how each figure is measured are in ``bench/_echo_room.py``; the tests in
``tests/appliance/test_echo.py`` hold the targets (ERLE >= 40 dB in every condition, near-end loss in
double talk <= 4 dB). Each condition is six takes of 20 s (a clerk, a citizen and a room each),
through the appliance's own speaker limiter and canceller (``appliance/hardware/limiter.py``,
``appliance/hardware/echo.py`` with its clock-drift compensation).

    erle_db.<condition>                        after convergence, the clerk alone (takes pooled)
    erle_db.<condition>.worst                  the worst of the takes
    double_talk_near_end_loss_db.<condition>   the citizen while the clerk talks, against the citizen alone
    echo_cpu_ms_per_audio_s                    the canceller's CPU per second of audio (its calls only)
    speaker_limiter_cpu_ms_per_audio_s         the speaker's levelling and limiting, on a loud clerk
"""
from __future__ import annotations

import time

from appliance.hardware.echo import EchoCanceller
from appliance.hardware.limiter import SoftLimiter
from bench._common import emit, note
from bench._echo_room import CLIPPING_DRIFT, CONDITIONS, FRAME, SR, measure, room

NAME = "echo"


def run(args) -> int:  # noqa: ANN001 - the bench runner's namespace
    cpu = []
    for condition in CONDITIONS:
        note(f"echo: {condition.name} ...")
        found = measure(condition, lambda clock: EchoCanceller(clock=clock), limiter=SoftLimiter)
        emit(f"erle_db.{condition.name}", found.erle_db, "dB")
        emit(f"erle_db.{condition.name}.worst", found.worst_erle_db, "dB")
        emit(f"double_talk_near_end_loss_db.{condition.name}", found.near_end_loss_db, "dB")
        cpu.append(found.cpu_s_per_audio_s)
    emit("echo_cpu_ms_per_audio_s", 1000 * sum(cpu) / len(cpu), "ms")
    emit("speaker_limiter_cpu_ms_per_audio_s", 1000 * limiter_cpu_s_per_audio_s(), "ms")
    return 0


def limiter_cpu_s_per_audio_s() -> float:
    """The limiter on 20 s of the loud clerk of ``clipping_drift``, frame by frame as the speaker plays."""
    signals = room(CLIPPING_DRIFT, 0)
    shape = SoftLimiter()
    started = time.process_time()
    for i in range(0, signals.played.size, FRAME):
        shape(signals.played[i:i + FRAME])
    return (time.process_time() - started) / (signals.played.size / SR)
