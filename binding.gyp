{
  "targets": [
    {
      "target_name": "u2pl",
      "sources": ["<!@(node scripts/native-sources.js)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<!@(node scripts/find-libtorch.js --include)"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "U2PL_ADDON_VERSION=\"<!(node -p \"require('./package.json').version\")\"",
        "U2PL_TORCH_SOURCE=\"<!(node scripts/find-libtorch.js --source)\"", "U2PL_TORCH_PREFIX=\"<!(node scripts/find-libtorch.js --cmake-prefix)\""],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=<!(node scripts/find-libtorch.js --cxx-std)", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-fno-trapping-math", "<!@(node scripts/find-libtorch.js --openmp-cflags)"],
      "libraries": [
        "-L<!(node scripts/find-libtorch.js --libdir)",
        "-Wl,-rpath,<!(node scripts/find-libtorch.js --libdir)",
        "-ltorch",
        "-ltorch_cpu",
        "-lc10"
      ]
    }
  ]
}
