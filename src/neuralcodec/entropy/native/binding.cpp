// pybind11 binding of the native coder. The Python wrapper (coder.py) converts and checks
// dtypes/shapes; this layer re-checks sizes (never trusts the caller for memory safety),
// builds the model, and codes with the GIL released.
#include <iterator>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "mixture_simd.h"
#include "models.h"
#include "stream.h"
#include "tritplane.h"

namespace py = pybind11;
using namespace nc;

namespace {

template <class T>
using Arr = py::array_t<T, py::array::c_style>;

PyObject* g_coder_error = nullptr;

void require(bool ok, const std::string& msg) {
  if (!ok) throw CoderErr(msg);
}

template <class Model>
py::bytes encode_with(const Model& model, uint8_t id, const Arr<int32_t>& symbols, int threads,
                      size_t chunk_size) {
  std::vector<uint8_t> out;
  {
    py::gil_scoped_release release;
    out = encode_stream(model, id, symbols.data(), size_t(symbols.size()), chunk_size, threads);
  }
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

template <class Model>
Arr<int32_t> decode_with(const Model& model, uint8_t id, const py::bytes& data, size_t count,
                         int threads) {
  char* buf = nullptr;
  Py_ssize_t len = 0;
  if (PyBytes_AsStringAndSize(data.ptr(), &buf, &len) != 0) throw py::error_already_set();
  const auto* p = reinterpret_cast<const uint8_t*>(buf);
  ChunkLayout layout;
  {
    py::gil_scoped_release release;
    layout = parse_stream(p, size_t(len), id, count);
  }
  Arr<int32_t> out(static_cast<py::ssize_t>(count));
  int32_t* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    decode_stream(model, layout, p, o, count, threads);
  }
  return out;
}

template <class Model>
double ideal_with(Model model, const Arr<int32_t>& symbols) {
  py::gil_scoped_release release;
  return ideal_bits(model, symbols.data(), size_t(symbols.size()));
}

// ---- model factories (size checks included) ----

ParametricModel parametric(int id, const Arr<float>& means, const Arr<float>& scales, size_t n) {
  require(id == kGaussian || id == kLaplace, "unknown parametric model");
  require(size_t(means.size()) == n && size_t(scales.size()) == n,
          "means and scales must have one entry per symbol");
  const bool g = id == kGaussian;
  return {means.data(), scales.data(), g ? &kGaussTable : &kLaplaceTable,
          g ? kHalfWidthGauss : kHalfWidthLaplace};
}

bool all_zero(const Arr<float>& a) {
  const float* p = a.data();
  for (py::ssize_t i = 0, n = a.size(); i < n; ++i)
    if (p[i] != 0.0f) return false;
  return true;
}

ZeroMeanModel zero_mean(int id, const ParametricModel& model, const Arr<float>& scales) {
  return {scales.data(), model.half_widths, &zero_mean_tables(id == kGaussian)};
}

/// Call fn with the mixture model of (N, K) parameters: K = 2, 3 and 4 get models with the
/// component count fixed at compile time (unrolled loops), other K the general one; with
/// `simd`, the model whose chunks take the SIMD path where the CPU has it (same streams).
template <class Fn>
auto with_gmm(const Arr<float>& w, const Arr<float>& m, const Arr<float>& s, size_t n, bool simd, Fn fn) {
  require(w.ndim() == 2 && m.ndim() == 2 && s.ndim() == 2, "mixture parameters must be 2-D");
  const size_t k = size_t(w.shape(1));
  require(k >= 1 && k <= size_t(kMaxComponents), "mixtures must have 1..8 components");
  for (const auto* a : {&w, &m, &s})
    require(size_t(a->shape(0)) == n && size_t(a->shape(1)) == k,
            "weights, means and scales must all have shape (N, K)");
  const auto pick = [&](auto model) {
    using Ref = decltype(model);
    if (simd && simd_active()) return fn(SimdGmmModel<Ref::kComponents>{model});
    return fn(model);
  };
  switch (k) {
    case 2: return pick(GmmModelT<2>{w.data(), m.data(), s.data(), 2});
    case 3: return pick(GmmModelT<3>{w.data(), m.data(), s.data(), 3});
    case 4: return pick(GmmModelT<4>{w.data(), m.data(), s.data(), 4});
    default: return pick(GmmModelT<0>{w.data(), m.data(), s.data(), int(k)});
  }
}

CategoricalModel categorical(const Arr<int32_t>& freqs, size_t n) {
  require(freqs.ndim() == 2, "freqs must be 2-D here");
  const size_t rows = size_t(freqs.shape(0)), a = size_t(freqs.shape(1));
  require(a >= 1 && a <= kMaxAlphabet, "alphabet size must be in [1, 4096]");
  require(rows == 1 || rows == n, "freqs must have one row or one row per symbol");
  return CategoricalModel(freqs.data(), uint32_t(a), rows != 1);
}

IndexedModel indexed(const Arr<int32_t>& indexes, const Arr<int32_t>& cdfs,
                     const Arr<int32_t>& lengths, const Arr<int32_t>& offsets, size_t n) {
  require(size_t(indexes.size()) == n, "indexes must have one entry per symbol");
  require(cdfs.ndim() == 2, "cdfs must be 2-D");
  const size_t tables = size_t(cdfs.shape(0));
  require(tables >= 1, "cdfs must hold at least one table");
  require(size_t(lengths.size()) == tables && size_t(offsets.size()) == tables,
          "cdf_lengths and offsets must have one entry per table");
  return IndexedModel(indexes.data(), cdfs.data(), tables, size_t(cdfs.shape(1)), lengths.data(),
                      offsets.data());
}

size_t count_of(const Arr<int32_t>& symbols) {
  require(symbols.ndim() == 1, "symbols must be 1-D");
  return size_t(symbols.size());
}

py::tuple quantize_gaussian_params(const Arr<float>& means, const Arr<float>& scales) {
  require(means.size() == scales.size(), "means and scales must have the same length");
  const size_t n = size_t(means.size());
  Arr<float> mq(static_cast<py::ssize_t>(n)), sq(static_cast<py::ssize_t>(n));
  const float *m = means.data(), *s = scales.data();
  float *om = mq.mutable_data(), *os = sq.mutable_data();
  {
    py::gil_scoped_release release;
    for (size_t i = 0; i < n; ++i) {
      om[i] = float(quantize_mean(m[i], [&] { return item("means", i); })) / 256.0f;
      os[i] = kScaleGrid[scale_index(s[i], [&] { return item("scales", i); })];
    }
  }
  return py::make_tuple(mq, sq);
}

// trit_plane_model(lo, k, sub, certain, log2m, one) -> (masses (n, 3), active, order)
py::tuple trit_plane_model_py(const Arr<int64_t>& lo, const Arr<int64_t>& k, int64_t sub,
                              int64_t certain, const Arr<int64_t>& log2m, int64_t one) {
  const size_t n = size_t(lo.size());
  require(size_t(k.size()) == n, "lo and k must have one entry per element");
  require(n < (size_t(1) << 31), "too many elements");
  require(log2m.size() == 257, "bad trit-plane log2 table");
  require(sub >= 1 && sub <= (int64_t(1) << 32), "trit size out of range");
  const int64_t* kp = k.data();
  const int64_t* lp = lo.data();
  for (size_t i = 0; i < n; ++i) {
    require(kp[i] >= 0 && kp[i] < kNumScales, "scale index out of range");
    require(lp[i] > -(int64_t(1) << 40) && lp[i] < (int64_t(1) << 40), "interval out of range");
  }
  Arr<int64_t> masses({static_cast<py::ssize_t>(n), py::ssize_t(3)});
  Arr<uint8_t> active(static_cast<py::ssize_t>(n));
  Arr<int64_t> order(static_cast<py::ssize_t>(n));
  const TritTables t{log2m.data(), one};
  int64_t* mp = masses.mutable_data();
  uint8_t* ap = active.mutable_data();
  int64_t* op = order.mutable_data();
  {
    py::gil_scoped_release release;
    trit_plane_model(t, lp, kp, n, sub, certain, mp, ap, op);
  }
  return py::make_tuple(masses, active.attr("astype")("bool"), order);
}

}  // namespace

PYBIND11_MODULE(_rans, m) {
  m.doc() = "Deterministic rANS entropy coder (see neuralcodec.entropy.coder, docs/coder.md)";
  g_coder_error = py::object(py::module_::import("neuralcodec.errors").attr("CoderError")).release().ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CoderErr& e) {
      PyErr_SetString(g_coder_error, e.what());
    }
  });
  m.attr("PRECISION") = kPrecision;
  m.attr("MAX_CHUNK_SIZE") = kMaxChunkSize;
  m.attr("NUM_SCALES") = kNumScales;

  // Zero means (the codecs' usual call) take the tabulated model: same streams, faster.
  m.def("encode_parametric", [](int id, const Arr<int32_t>& sym, const Arr<float>& mu,
                                const Arr<float>& sc, int threads, size_t chunk) {
    const ParametricModel model = parametric(id, mu, sc, count_of(sym));
    if (all_zero(mu)) return encode_with(zero_mean(id, model, sc), uint8_t(id), sym, threads, chunk);
    return encode_with(model, uint8_t(id), sym, threads, chunk);
  });
  m.def("decode_parametric", [](int id, const py::bytes& data, const Arr<float>& mu,
                                const Arr<float>& sc, int threads) {
    const ParametricModel model = parametric(id, mu, sc, size_t(mu.size()));
    if (all_zero(mu))
      return decode_with(zero_mean(id, model, sc), uint8_t(id), data, size_t(mu.size()), threads);
    return decode_with(model, uint8_t(id), data, size_t(mu.size()), threads);
  });
  m.def("ideal_parametric", [](int id, const Arr<int32_t>& sym, const Arr<float>& mu,
                               const Arr<float>& sc) {
    return ideal_with(parametric(id, mu, sc, count_of(sym)), sym);
  });
  m.def("encode_gmm", [](const Arr<int32_t>& sym, const Arr<float>& w, const Arr<float>& mu,
                         const Arr<float>& sc, int threads, size_t chunk) {
    return with_gmm(w, mu, sc, count_of(sym), true,
                    [&](const auto& model) { return encode_with(model, kGmm, sym, threads, chunk); });
  });
  m.def("decode_gmm", [](const py::bytes& data, const Arr<float>& w, const Arr<float>& mu,
                         const Arr<float>& sc, int threads) {
    const size_t n = w.ndim() == 2 ? size_t(w.shape(0)) : 0;
    return with_gmm(w, mu, sc, n, true,
                    [&](const auto& model) { return decode_with(model, kGmm, data, n, threads); });
  });
  m.def("ideal_gmm", [](const Arr<int32_t>& sym, const Arr<float>& w, const Arr<float>& mu,
                        const Arr<float>& sc) {
    return with_gmm(w, mu, sc, count_of(sym), false, [&](const auto& model) { return ideal_with(model, sym); });
  });

  m.def("encode_categorical", [](const Arr<int32_t>& sym, const Arr<int32_t>& freqs, int threads,
                                 size_t chunk) {
    return encode_with(categorical(freqs, count_of(sym)), kCategorical, sym, threads, chunk);
  });
  m.def("decode_categorical", [](const py::bytes& data, const Arr<int32_t>& freqs, size_t n,
                                 int threads) {
    return decode_with(categorical(freqs, n), kCategorical, data, n, threads);
  });
  m.def("ideal_categorical", [](const Arr<int32_t>& sym, const Arr<int32_t>& freqs) {
    return ideal_with(categorical(freqs, count_of(sym)), sym);
  });

  m.def("encode_indexed", [](const Arr<int32_t>& sym, const Arr<int32_t>& idx,
                             const Arr<int32_t>& cdfs, const Arr<int32_t>& lengths,
                             const Arr<int32_t>& offsets, int threads, size_t chunk) {
    return encode_with(indexed(idx, cdfs, lengths, offsets, count_of(sym)), kIndexed, sym,
                       threads, chunk);
  });
  m.def("decode_indexed", [](const py::bytes& data, const Arr<int32_t>& idx,
                             const Arr<int32_t>& cdfs, const Arr<int32_t>& lengths,
                             const Arr<int32_t>& offsets, int threads) {
    const size_t n = size_t(idx.size());
    return decode_with(indexed(idx, cdfs, lengths, offsets, n), kIndexed, data, n, threads);
  });
  m.def("ideal_indexed", [](const Arr<int32_t>& sym, const Arr<int32_t>& idx,
                            const Arr<int32_t>& cdfs, const Arr<int32_t>& lengths,
                            const Arr<int32_t>& offsets) {
    return ideal_with(indexed(idx, cdfs, lengths, offsets, count_of(sym)), sym);
  });

  m.def("quantize_gaussian_params", &quantize_gaussian_params);
  m.def("set_simd", [](bool on) { g_simd_enabled.store(on); });
  m.def("simd_active", &simd_active);
  m.def("trit_plane_model", &trit_plane_model_py);
}
