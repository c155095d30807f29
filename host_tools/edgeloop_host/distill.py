"""Knowledge distillation for Keras 3: a small student learns from a big teacher's softened outputs.

    from edgeloop_host.distill import distill
    student = distill(teacher, student, x_train, y_train, epochs=60, temperature=4.0, alpha=0.1)

The loss is Hinton et al.'s: ``(1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T)) + alpha * CE(y, s)``
where t and s are the teacher's and student's logits. A model whose last layer applies softmax is handled
(its log-probabilities are used as logits: softmax ignores the constant offset).
"""
from __future__ import annotations

from .train import tf

tf()
import keras  # noqa: E402
from keras import ops  # noqa: E402


def outputs_probabilities(model) -> bool:
    """True if the model's last layer ends in a softmax (it outputs probabilities, not logits)."""
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    if isinstance(last, keras.layers.Softmax):
        return True
    return act is not None and getattr(act, "__name__", "") == "softmax"


def _as_logits(y, probs: bool):
    return ops.log(ops.clip(y, 1e-7, 1.0)) if probs else y


@keras.saving.register_keras_serializable(package="edgeloop")
class Distiller(keras.Model):
    """Wraps (student, teacher); fit() trains the student only. Predictions are the student's."""

    def __init__(self, student, teacher, temperature: float = 4.0, alpha: float = 0.1, **kw):
        super().__init__(**kw)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha (weight of the hard-label loss) must be in [0, 1], got {alpha}")
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self._student_probs = outputs_probabilities(student)
        self._teacher_probs = outputs_probabilities(teacher)
        self._kl = keras.losses.KLDivergence()
        self._ce = keras.losses.SparseCategoricalCrossentropy(from_logits=not self._student_probs)

    def call(self, x, training=False):
        return self.student(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        t = self.temperature
        teacher_logits = _as_logits(self.teacher(x, training=False), self._teacher_probs)
        student_logits = _as_logits(y_pred, self._student_probs)
        soft = self._kl(ops.softmax(teacher_logits / t, axis=-1), ops.softmax(student_logits / t, axis=-1))
        hard = self._ce(y, y_pred)
        return (1.0 - self.alpha) * soft * (t * t) + self.alpha * hard


def distill(teacher, student, x, y, epochs: int = 60, temperature: float = 4.0, alpha: float = 0.1,
            lr=3e-3, batch_size: int = 32, callbacks=(), verbose: int = 0, validation_data=None, optimizer=None):
    """Trains `student` (an uncompiled or compiled Keras model) on (x, y) with `teacher`'s soft targets.

    lr: a float or a Keras learning-rate schedule (optimizer: a ready Keras optimizer instead of Adam(lr)).
    x can be a larger transfer set than the training data (augment.transfer_set): the teacher labels it.
    Returns the trained student (the same object). The teacher is not modified.
    """
    t_out, s_out = teacher.outputs[0].shape[-1], student.outputs[0].shape[-1]
    if t_out != s_out:
        raise ValueError(f"teacher has {t_out} outputs but the student has {s_out}")
    was_trainable = teacher.trainable
    try:
        d = Distiller(student, teacher, temperature=temperature, alpha=alpha)
        d.compile(optimizer=optimizer or keras.optimizers.Adam(lr), metrics=["accuracy"])
        d.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=verbose, callbacks=list(callbacks),
              validation_data=validation_data)
    finally:
        teacher.trainable = was_trainable
    return student
