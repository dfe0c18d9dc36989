# Generated code lives in the build tree only. Two targets:
#   kontor_proto  plain protobuf messages (core modules link this)
#   kontor_grpc   service stubs (only transport, api, server and the CLI)
set(KONTOR_PROTO_SRC ${PROJECT_SOURCE_DIR}/proto)
set(KONTOR_GEN ${PROJECT_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${KONTOR_GEN})

set(_msg_protos kinds envelope config federation local)
if(KONTOR_WITH_GRPC)
  set(_svc_protos federation local)
else()
  set(_svc_protos)
endif()
set(_pb_srcs)
set(_grpc_srcs)
foreach(p ${_msg_protos})
  set(_in ${KONTOR_PROTO_SRC}/kontor/v1/${p}.proto)
  set(_out ${KONTOR_GEN}/kontor/v1/${p}.pb.cc ${KONTOR_GEN}/kontor/v1/${p}.pb.h)
  add_custom_command(
    OUTPUT ${_out}
    COMMAND protobuf::protoc --cpp_out=${KONTOR_GEN} -I ${KONTOR_PROTO_SRC} ${_in}
    DEPENDS ${_in} protobuf::protoc
    COMMENT "protoc ${p}.proto")
  list(APPEND _pb_srcs ${_out})
endforeach()
foreach(p ${_svc_protos})
  set(_in ${KONTOR_PROTO_SRC}/kontor/v1/${p}.proto)
  set(_out ${KONTOR_GEN}/kontor/v1/${p}.grpc.pb.cc ${KONTOR_GEN}/kontor/v1/${p}.grpc.pb.h)
  add_custom_command(
    OUTPUT ${_out}
    COMMAND protobuf::protoc --grpc_out=${KONTOR_GEN}
            --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
            -I ${KONTOR_PROTO_SRC} ${_in}
    DEPENDS ${_in} protobuf::protoc gRPC::grpc_cpp_plugin
    COMMENT "protoc grpc ${p}.proto")
  list(APPEND _grpc_srcs ${_out})
endforeach()

add_library(kontor_proto STATIC ${_pb_srcs})
target_include_directories(kontor_proto PUBLIC ${KONTOR_GEN})
target_link_libraries(kontor_proto PUBLIC protobuf::libprotobuf)
target_compile_options(kontor_proto PRIVATE -w)

if(KONTOR_WITH_GRPC)
  add_library(kontor_grpc STATIC ${_grpc_srcs})
  target_include_directories(kontor_grpc PUBLIC ${KONTOR_GEN})
  target_link_libraries(kontor_grpc PUBLIC kontor_proto gRPC::grpc++)
  target_compile_options(kontor_grpc PRIVATE -w)
endif()
