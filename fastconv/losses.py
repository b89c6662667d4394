"""Loss functions returning the loss and its gradient with respect to the scores."""
import numpy as np

from fastconv import _geometry


def softmax_cross_entropy(scores, labels):
    """Mean softmax cross-entropy of class scores, and its gradient.

    Parameters
    ----------
    scores : ndarray, shape (N, classes)
        Unnormalised class scores (float32 or float64).
    labels : ndarray of int, shape (N,)
        The right class of each row, in [0, classes).

    Returns
    -------
    loss : float
        ``mean(-log softmax(scores)[n, labels[n]])``, computed stably (scores shifted by their
        row maximum before exponentiating).
    dscores : ndarray, shape (N, classes)
        ``(softmax(scores) - onehot(labels)) / N``, in the dtype of `scores`.

    Examples
    --------
    >>> loss, d = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 4)
    1.3863
    """
    func = "softmax_cross_entropy"
    scores = _geometry.as_float_array(func, "scores", scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"{func}: scores must be 2-D (N, classes) with N, classes >= 1, "
                         f"got shape {scores.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{func}: labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"{func}: labels must have shape ({scores.shape[0]},), "
                         f"got {labels.shape}")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"{func}: labels must lie in [0, {scores.shape[1]}), got "
                         f"{int(labels.min() if labels.min() < 0 else labels.max())}")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = scores.shape[0]
    loss = float(-log_probs[np.arange(n), labels].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(n), labels] -= 1
    dscores /= n
    return loss, dscores.astype(scores.dtype, copy=False)
