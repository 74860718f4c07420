# A test about the layout: hotlap's folders are layers, and each may include only from itself and the
# layers listed for it, so the arrows between folders point one way (docs/design.md, "the layers").
# A reader can stop at any folder and know that nothing below it depends on what is above.
#
#   cmake -DROOT=<repository> -P tests/check_layers.cmake
#
# Fails naming every file and #include that points the wrong way. tests/, bench/ and fuzz/ may
# include anything; a folder inside a listed one (apps/score/face) belongs to its layer.
cmake_minimum_required(VERSION 3.24)

set(layers
  # folder          may also include from
  "kernels|"
  "nn/runtime|kernels"
  "nn/layers|kernels nn/runtime"
  "nn/files|kernels nn/runtime nn/layers"
  "resnet|kernels nn"
  "apps/common|kernels nn resnet"
  "apps/data|kernels nn resnet apps/common"
  "apps/train|kernels nn resnet apps/common apps/data"
  "apps/score|kernels nn resnet apps/common apps/data"
  "apps/cli|kernels nn resnet apps"
)

set(bad "")
foreach(entry IN LISTS layers)
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 folder)
  list(LENGTH parts n)
  set(allowed "${folder}")
  if(n GREATER 1)
    list(GET parts 1 others)
    string(REPLACE " " ";" others "${others}")
    list(APPEND allowed ${others})
  endif()
  if(NOT IS_DIRECTORY "${ROOT}/${folder}")
    message(FATAL_ERROR "check_layers.cmake lists ${folder}, which is not a folder of ${ROOT}")
  endif()
  file(GLOB_RECURSE sources "${ROOT}/${folder}/*.h" "${ROOT}/${folder}/*.cpp" "${ROOT}/${folder}/*.cu"
       "${ROOT}/${folder}/*.cuh" "${ROOT}/${folder}/*.inc")
  foreach(source IN LISTS sources)
    file(STRINGS "${source}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*$" "\\1" path "${line}")
      # Only hotlap's own folders are layers; third-party headers are not checked here.
      if(NOT path MATCHES "^(kernels|nn|resnet|apps)/")
        continue()
      endif()
      set(ok FALSE)
      foreach(prefix IN LISTS allowed)
        string(LENGTH "${prefix}/" len)
        string(SUBSTRING "${path}" 0 ${len} head)
        if(head STREQUAL "${prefix}/")
          set(ok TRUE)
        endif()
      endforeach()
      if(NOT ok)
        file(RELATIVE_PATH rel "${ROOT}" "${source}")
        list(APPEND bad "${rel} includes ${path} (${folder} may use: ${allowed})")
      endif()
    endforeach()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "includes against the layers:\n  ${bad}")
endif()
