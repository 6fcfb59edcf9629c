// Latent-attention layers (DeepSeek V2/V3's MLA) on the CUDA backend: their matrices uploaded for
// latent_attention_block, which runs them as it runs the CPU's. Each head's k_b and v_b is a view into
// one upload of every head's.
#pragma once

#include <cstdint>

#include "cuda/cuda_backend.h"
#include "model/latent_attention.h"
#include "model/model_config.h"
#include "model/weights.h"

namespace ember {

// A latent-attention layer's matrices on the device.
struct CudaLatentLayer {
  LatentLinearsOf<cuda::CudaLinear> linears;  // k_b[h] / v_b[h]: views into the uploads below
  cuda::CudaExperts k_b, v_b;                 // every head's, head h at index h
};

// Uploads layer `il`'s latent-attention matrices (an older file's merged attn_kv_b as k_b copies,
// transposed on the host, and its v_b rows); `bytes` grows by what they take.
CudaLatentLayer upload_latent_layer(cuda::CudaBackend& backend, const ModelConfig& config, const LayerWeights& w,
                                    int32_t il, uint64_t& bytes);
// Their device bytes, norms included (for the fit check before uploading).
uint64_t latent_layer_bytes(const ModelConfig& config, const LayerWeights& w);

// A per-head matrix's shape and type as the device holds it (for sizing the GEMM's scratch).
struct HeadMatrixShape {
  DType dtype;
  int64_t elements;
};
// Layer w's k_b and v_b per head.
HeadMatrixShape latent_k_b_shape(const ModelConfig& config, const LayerWeights& w);
HeadMatrixShape latent_v_b_shape(const ModelConfig& config, const LayerWeights& w);

}  // namespace ember
