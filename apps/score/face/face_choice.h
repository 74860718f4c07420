// Which face `hotlap score` scores when the detector finds several: a rule that survives false
// positives. A detector as good as MTCNN still fires now and then on something that is not a face
// (a patterned race suit, a logo, a face printed on a cap), and such a box can be larger than the
// real face; "score the largest box" then scores a chest. Three things together tell them apart:
//
//  1. Geometry a face must have (face_geometry_problem). MTCNN places five landmarks on whatever it
//     boxes; on a real face they sit the way a face's features do, whatever the head's pose: measured
//     along the eye line (x) and across it (y, pointing towards the mouth), in eye distances d:
//       - every landmark inside the box, give or take a quarter of its side;
//       - the eyes between 0.12 and 0.8 of the box's width apart (a profile view brings them close;
//         a box much wider than the face holds something else);
//       - the mouth below the eyes: its midpoint 0.4 d to 2.5 d along y (a frontal face has about
//         1.1 d; looking down or up moves it, never above the eyes);
//       - the nose between the eye line and the mouth along y (0.25 d of slack either side) and
//         within 1.5 d of the eye midpoint along x;
//       - the mouth corners in the same left-to-right order as the eyes, 0.3 d to 2 d apart.
//     Each bound is several times wider than the spread of real faces, so that turned, tilted,
//     shouting and partly covered faces pass; what fails is a box whose landmarks describe no face.
//  2. Confidence. A real face that the cascade sees clearly has an O-Net probability near 1 (above
//     0.99 typically); a false positive usually scrapes past the 0.7 threshold. Faces at or above
//     kConfidentFace (0.95) count as confident.
//  3. Size. Among the faces that pass 1 and 2, the largest is the photo's subject (a portrait's sitter
//     in front of a crowd, a poster in the background).
//
// The order is therefore: plausible before implausible, then confident before not, then larger
// before smaller. The first face is scored; with --all-faces every face gets its own row, in this
// order. A choice is doubtful, and the warning names both candidates, when
//   - the face scored is not the largest box (a larger one was passed over, and why), or
//   - a second plausible, confident face is at least half the scored face's area (two subjects), or
//   - no face is plausible (the largest confident box is scored anyway, and the warning says so), or
//   - the face scored is not confident (no box is: the photo may hold no face at all, as when the
//     only box is a logo on a shirt).
#pragma once

#include <string>
#include <vector>

#include "apps/score/face/face_detect.h"

namespace hotlap {

inline constexpr double kConfidentFace = 0.95;

// Why the five landmarks of `face` cannot be a face's ("the mouth is above the eyes", ...), or ""
// when they can.
std::string face_geometry_problem(const DetectedFace& face);

struct FaceChoice {
  std::vector<size_t> order;             // indices into the faces, the one to score first
  std::vector<std::string> implausible;  // per face (same indexing as the input): face_geometry_problem
  std::string doubt;                     // "" when the choice is clear; otherwise a warning naming both
};

// The faces in the order of the rule above (stable: equal faces keep the detector's order).
FaceChoice choose_faces(const std::vector<DetectedFace>& faces);

// "the face at 209,51 (78x101, p 0.999)": how warnings name a face (photo pixels, rounded).
std::string describe_face(const DetectedFace& face);

}  // namespace hotlap
