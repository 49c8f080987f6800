/**
 * Walker2d's MJCF model, written from the published physical parameters of
 * gym's Walker2d (v3, under which D4RL's v2 datasets were recorded): a torso
 * on two legs of thigh, leg and foot capsules in a plane, density 1000,
 * motors of gear 100, RK4 integration at 0.002 s. The left foot's friction
 * (1.9) differs from the right foot's (0.9), as in gym's model.
 *
 * gym states the model in global coordinates; here every position is the
 * same point expressed relative to its parent body, which modern MuJoCo
 * requires. The root z joint keeps its reference 1.25, so `qpos[1]` reads the
 * torso's height as in gym.
 *
 * @module
 */

/** One leg of the walker: thigh, leg and foot, named with a suffix. */
function leg(suffix: string, footFriction: number): string {
  return `
      <body name="thigh${suffix}" pos="0 0 -0.2">
        <joint name="thigh${suffix}_joint" type="hinge" axis="0 -1 0" pos="0 0 0" range="-150 0"/>
        <geom name="thigh${suffix}_geom" type="capsule" fromto="0 0 0 0 0 -0.45" size="0.05" friction="0.9"/>
        <body name="leg${suffix}" pos="0 0 -0.7">
          <joint name="leg${suffix}_joint" type="hinge" axis="0 -1 0" pos="0 0 0.25" range="-150 0"/>
          <geom name="leg${suffix}_geom" type="capsule" fromto="0 0 0.25 0 0 -0.25" size="0.04" friction="0.9"/>
          <body name="foot${suffix}" pos="0.1 0 -0.25">
            <joint name="foot${suffix}_joint" type="hinge" axis="0 -1 0" pos="-0.1 0 0" range="-45 45"/>
            <geom name="foot${suffix}_geom" type="capsule" fromto="-0.1 0 0 0.1 0 0" size="0.06" friction="${footFriction}"/>
          </body>
        </body>
      </body>`;
}

/** The Walker2d model as an MJCF document. */
export const walker2dXml = `<mujoco model="walker2d">
  <compiler angle="degree" inertiafromgeom="true"/>
  <default>
    <joint armature="0.01" damping="0.1" limited="true"/>
    <geom conaffinity="0" condim="3" contype="1" density="1000" friction="0.7 0.1 0.1"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <option integrator="RK4" timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" conaffinity="1" condim="3" pos="0 0 0" size="40 40 40"/>
    <body name="torso" pos="0 0 1.25">
      <joint name="rootx" type="slide" axis="1 0 0" pos="0 0 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" pos="0 0 0" ref="1.25" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" pos="0 0 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <geom name="torso_geom" type="capsule" fromto="0 0 0.2 0 0 -0.2" size="0.05" friction="0.9"/>${
  leg("", 0.9)
}${leg("_left", 1.9)}
    </body>
  </worldbody>
  <actuator>
    <motor name="thigh" joint="thigh_joint" gear="100"/>
    <motor name="leg" joint="leg_joint" gear="100"/>
    <motor name="foot" joint="foot_joint" gear="100"/>
    <motor name="thigh_left" joint="thigh_left_joint" gear="100"/>
    <motor name="leg_left" joint="leg_left_joint" gear="100"/>
    <motor name="foot_left" joint="foot_left_joint" gear="100"/>
  </actuator>
</mujoco>
`;
