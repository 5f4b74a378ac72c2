/* kg_fastcall.h: a kernel called from Python in C, for kg.function's builds.
 *
 * A small call is mostly argument handling: in Python, checking each array,
 * cffi's from_buffer for each pointer, np.empty and from_buffer again for each
 * output cost several times what NumPy's `x + 1` does. Here one builtin does
 * it all: each argument must be an exact numpy.ndarray of the input's dtype
 * (its buffer format), ndim, alignment and C order, or a Python float for a
 * 0-d float64 input; the shape phase sizes the outputs, numpy.empty allocates
 * them, and the kernel runs (with the GIL released for large arrays).
 *
 * Anything else (keywords, other types, a view, a failed shape check or run)
 * goes to the kernel's general call (kgen/runtime/core.py), which checks,
 * converts and raises exactly as it always does: this path has no errors of
 * its own. It uses CPython's full C API, so shipped packages (stable ABI)
 * leave it out and keep the Python fast path.
 *
 * Pasted into cffi's wrapper (which has included Python.h) by
 * templates/c/fastcall.c.jinja, with one descriptor per kernel. */
#ifndef KG_FASTCALL_H
#define KG_FASTCALL_H
#include <stdint.h>
#include <string.h>

#define KG_FAST_MAX 32          /* inputs, outputs (a kernel with more keeps the Python call) */
#define KG_FAST_MAX_DIMS 256
#define KG_FAST_NOGIL 32768     /* elements from which the run releases the GIL */

typedef int (*kg_fast_run_fn)(void *const *in, const int64_t *dims, void *const *out);
typedef int (*kg_fast_shapes_fn)(const int64_t *dims, int64_t *out_shape);

typedef struct {
    int n_in, n_out;
    const int *arg_ndim, *res_ndim;
    kg_fast_run_fn run;
    kg_fast_shapes_fn shapes;
} kg_fast_kernel;

/* The builtin's self: (capsule of the kg_fast_kernel, numpy.ndarray, numpy.empty,
   the general call, the inputs' buffer formats (bytes), the output dtypes,
   single output (bool)). */
enum { KG_FS_KERNEL, KG_FS_NDARRAY, KG_FS_EMPTY, KG_FS_GENERAL, KG_FS_FORMATS,
       KG_FS_DTYPES, KG_FS_SINGLE, KG_FS_LEN };

static PyObject *kg_fast_general(PyObject *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames)
{
    return PyObject_Vectorcall(PyTuple_GET_ITEM(self, KG_FS_GENERAL), args, nargsf, kwnames);
}

static PyObject *kg_fast_call(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames)
{
    const kg_fast_kernel *k = (const kg_fast_kernel *)PyCapsule_GetPointer(
        PyTuple_GET_ITEM(self, KG_FS_KERNEL), "kgen.fastcall");
    if (k == NULL)
        return NULL;
    if (kwnames != NULL || nargs != k->n_in)
        return kg_fast_general(self, args, (size_t)nargs, kwnames);
    PyTypeObject *ndarray = (PyTypeObject *)PyTuple_GET_ITEM(self, KG_FS_NDARRAY);
    PyObject *formats = PyTuple_GET_ITEM(self, KG_FS_FORMATS);
    Py_buffer views[KG_FAST_MAX], res_views[KG_FAST_MAX];
    PyObject *outs[KG_FAST_MAX];
    void *in[KG_FAST_MAX], *out[KG_FAST_MAX];
    double scalars[KG_FAST_MAX];
    int64_t dims[KG_FAST_MAX_DIMS], out_shape[KG_FAST_MAX_DIMS];
    int n_views = 0, n_outs = 0, n_dims = 0, n_out_views = 0, general = 1;
    Py_ssize_t size = 0;
    PyObject *result = NULL;

    for (int i = 0; i < k->n_in; i++) {
        PyObject *a = args[i];
        const char *format = PyBytes_AS_STRING(PyTuple_GET_ITEM(formats, i));
        if (Py_TYPE(a) == ndarray) {
            Py_buffer *v = &views[n_views];
            if (PyObject_GetBuffer(a, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
                PyErr_Clear();  /* not C-contiguous: the general call copies it */
                goto done;
            }
            n_views++;
            if (v->ndim != k->arg_ndim[i] || strcmp(v->format, format) != 0
                || (uintptr_t)v->buf % (uintptr_t)v->itemsize != 0)
                goto done;
            for (int d = 0; d < v->ndim; d++)
                dims[n_dims++] = (int64_t)v->shape[d];
            size += v->len / v->itemsize;
            in[i] = v->buf;
        } else if (PyFloat_CheckExact(a) && k->arg_ndim[i] == 0 && strcmp(format, "d") == 0) {
            scalars[i] = PyFloat_AS_DOUBLE(a);  /* the weak-scalar rule: a float64 */
            in[i] = &scalars[i];
        } else {
            goto done;
        }
    }
    if (k->shapes(dims, out_shape))
        goto done;  /* the general call raises the shape error, with its message */

    PyObject *empty = PyTuple_GET_ITEM(self, KG_FS_EMPTY);
    PyObject *dtypes = PyTuple_GET_ITEM(self, KG_FS_DTYPES);
    for (int j = 0, at = 0; j < k->n_out; j++) {
        PyObject *shape = PyTuple_New(k->res_ndim[j]);
        if (shape == NULL)
            goto fail;
        for (int d = 0; d < k->res_ndim[j]; d++, at++) {
            PyObject *n = PyLong_FromLongLong(out_shape[at]);
            if (n == NULL) {
                Py_DECREF(shape);
                goto fail;
            }
            PyTuple_SET_ITEM(shape, d, n);
        }
        PyObject *argv[2] = {shape, PyTuple_GET_ITEM(dtypes, j)};
        outs[n_outs] = PyObject_Vectorcall(empty, argv, 2, NULL);
        Py_DECREF(shape);
        if (outs[n_outs] == NULL)
            goto fail;  /* MemoryError and the like: raised as they are */
        n_outs++;
        if (PyObject_GetBuffer(outs[j], &res_views[j], PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
            goto fail;
        n_out_views++;
        out[j] = res_views[j].buf;
    }

    int rc;
    if (size >= KG_FAST_NOGIL) {
        Py_BEGIN_ALLOW_THREADS
        rc = k->run(in, dims, out);
        Py_END_ALLOW_THREADS
    } else {
        rc = k->run(in, dims, out);
    }
    if (rc)
        goto done;  /* nothing was written but fresh outputs: the general call raises */
    general = 0;
    if (PyTuple_GET_ITEM(self, KG_FS_SINGLE) == Py_True) {
        result = outs[0];
        Py_INCREF(result);
    } else {
        result = PyList_New(k->n_out);
        if (result == NULL)
            goto fail;
        for (int j = 0; j < k->n_out; j++) {
            Py_INCREF(outs[j]);
            PyList_SET_ITEM(result, j, outs[j]);
        }
    }
    goto done;
fail:
    general = 0;
    result = NULL;
done:
    for (int j = 0; j < n_out_views; j++)
        PyBuffer_Release(&res_views[j]);
    for (int j = 0; j < n_outs; j++)
        Py_DECREF(outs[j]);
    for (int i = 0; i < n_views; i++)
        PyBuffer_Release(&views[i]);
    if (general)
        return kg_fast_general(self, args, (size_t)nargs, kwnames);
    return result;
}

static PyMethodDef kg_fast_def = {
    "__call__", (PyCFunction)(void (*)(void))kg_fast_call, METH_FASTCALL | METH_KEYWORDS,
    "The kernel's call (checked like the general call; see kg_fastcall.h)."};

/* A builtin calling `k`, given (numpy.ndarray, numpy.empty, general call, formats,
   output dtypes, single): loaded by kgen/runtime/core.py through ctypes. */
static PyObject *kg_fast_make(const kg_fast_kernel *k, PyObject *setup)
{
    if (!PyTuple_Check(setup) || PyTuple_GET_SIZE(setup) != KG_FS_LEN - 1
        || k->n_in > KG_FAST_MAX || k->n_out > KG_FAST_MAX || k->n_out < 1
        || !PyTuple_Check(PyTuple_GET_ITEM(setup, KG_FS_FORMATS - 1))
        || PyTuple_GET_SIZE(PyTuple_GET_ITEM(setup, KG_FS_FORMATS - 1)) != k->n_in
        || !PyTuple_Check(PyTuple_GET_ITEM(setup, KG_FS_DTYPES - 1))
        || PyTuple_GET_SIZE(PyTuple_GET_ITEM(setup, KG_FS_DTYPES - 1)) != k->n_out) {
        PyErr_SetString(PyExc_ValueError, "kgen fast call: bad setup");
        return NULL;
    }
    int n_dims = 0, n_out_dims = 0;
    for (int i = 0; i < k->n_in; i++)
        n_dims += k->arg_ndim[i];
    for (int j = 0; j < k->n_out; j++)
        n_out_dims += k->res_ndim[j];
    if (n_dims > KG_FAST_MAX_DIMS || n_out_dims > KG_FAST_MAX_DIMS) {
        PyErr_SetString(PyExc_ValueError, "kgen fast call: too many dimensions");
        return NULL;
    }
    PyObject *capsule = PyCapsule_New((void *)k, "kgen.fastcall", NULL);
    if (capsule == NULL)
        return NULL;
    PyObject *self = PyTuple_New(KG_FS_LEN);
    if (self == NULL) {
        Py_DECREF(capsule);
        return NULL;
    }
    PyTuple_SET_ITEM(self, KG_FS_KERNEL, capsule);
    for (int i = 1; i < KG_FS_LEN; i++) {
        PyObject *item = PyTuple_GET_ITEM(setup, i - 1);
        Py_INCREF(item);
        PyTuple_SET_ITEM(self, i, item);
    }
    PyObject *fn = PyCFunction_New(&kg_fast_def, self);
    Py_DECREF(self);
    return fn;
}

#if defined(__GNUC__)
#define KG_FAST_EXPORT __attribute__((visibility("default")))
#else
#define KG_FAST_EXPORT
#endif
#endif /* KG_FASTCALL_H */
