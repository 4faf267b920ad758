/* GenTL functions this producer does not support (multi-part, composite buffers, flows, segments). They are
 * exported anyway: genicam resolves all 64 symbols at load time. */
#include "fake.h"

#define NOT_IMPLEMENTED(name) return fake_fail(GC_ERR_NOT_IMPLEMENTED, name " is not implemented")

GC_API DSGetBufferPartInfo(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, uint32_t iPartIndex,
                           BUFFER_PART_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    (void)hDataStream, (void)hBuffer, (void)iPartIndex, (void)iInfoCmd, (void)piType, (void)pBuffer, (void)piSize;
    NOT_IMPLEMENTED("DSGetBufferPartInfo");
}

GC_API DSAnnounceCompositeBuffer(DS_HANDLE hDataStream, size_t iNumSegments, void **ppSegments, size_t *piSizes,
                                 void *pPrivate, BUFFER_HANDLE *phBuffer) {
    (void)hDataStream, (void)iNumSegments, (void)ppSegments, (void)piSizes, (void)pPrivate, (void)phBuffer;
    NOT_IMPLEMENTED("DSAnnounceCompositeBuffer");
}

GC_API DSGetBufferPartInfoStacked(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer,
                                  DS_BUFFER_PART_INFO_STACKED *pInfoStacked, size_t iNumInfos) {
    (void)hDataStream, (void)hBuffer, (void)pInfoStacked, (void)iNumInfos;
    NOT_IMPLEMENTED("DSGetBufferPartInfoStacked");
}

GC_API DSGetNumFlows(DS_HANDLE hDataStream, uint32_t *piNumFlows) {
    (void)hDataStream, (void)piNumFlows;
    NOT_IMPLEMENTED("DSGetNumFlows");
}

GC_API DSGetFlowInfo(DS_HANDLE hDataStream, uint32_t iFlowIndex, FLOW_INFO_CMD iInfoCmd, INFO_DATATYPE *piType,
                     void *pBuffer, size_t *piSize) {
    (void)hDataStream, (void)iFlowIndex, (void)iInfoCmd, (void)piType, (void)pBuffer, (void)piSize;
    NOT_IMPLEMENTED("DSGetFlowInfo");
}

GC_API DSGetNumBufferSegments(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, uint32_t *piNumSegments) {
    (void)hDataStream, (void)hBuffer, (void)piNumSegments;
    NOT_IMPLEMENTED("DSGetNumBufferSegments");
}

GC_API DSGetBufferSegmentInfo(DS_HANDLE hDataStream, BUFFER_HANDLE hBuffer, uint32_t iSegmentIndex,
                              SEGMENT_INFO_CMD iInfoCmd, INFO_DATATYPE *piType, void *pBuffer, size_t *piSize) {
    (void)hDataStream, (void)hBuffer, (void)iSegmentIndex, (void)iInfoCmd, (void)piType, (void)pBuffer, (void)piSize;
    NOT_IMPLEMENTED("DSGetBufferSegmentInfo");
}
