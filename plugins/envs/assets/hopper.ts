/**
 * Hopper's MJCF model, written from the published physical parameters of
 * gym's Hopper (v3, under which D4RL's v2 datasets were recorded): a torso,
 * thigh, leg and foot of capsules in a plane, hinges with armature 1 and
 * damping 1, motors of gear 200, RK4 integration at 0.002 s.
 *
 * gym states the model in global coordinates; here every position is the
 * same point expressed relative to its parent body, which modern MuJoCo
 * requires. The root z joint keeps its reference 1.25, so `qpos[1]` reads the
 * torso's height as in gym.
 *
 * @module
 */

/** The Hopper model as an MJCF document. */
export const hopperXml = `<mujoco model="hopper">
  <compiler angle="degree" inertiafromgeom="true"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom conaffinity="1" condim="1" contype="1" margin="0.001" solimp="0.8 0.8 0.01" solref="0.02 1"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <option integrator="RK4" timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" conaffinity="1" condim="3" pos="0 0 0" size="20 20 0.125"/>
    <body name="torso" pos="0 0 1.25">
      <joint name="rootx" type="slide" axis="1 0 0" pos="0 0 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" pos="0 0 0" ref="1.25" limited="false" armature="0" damping="0" stiffness="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" pos="0 0 0" limited="false" armature="0" damping="0" stiffness="0"/>
      <geom name="torso_geom" type="capsule" fromto="0 0 0.2 0 0 -0.2" size="0.05" friction="0.9"/>
      <body name="thigh" pos="0 0 -0.2">
        <joint name="thigh_joint" type="hinge" axis="0 -1 0" pos="0 0 0" range="-150 0"/>
        <geom name="thigh_geom" type="capsule" fromto="0 0 0 0 0 -0.45" size="0.05" friction="0.9"/>
        <body name="leg" pos="0 0 -0.7">
          <joint name="leg_joint" type="hinge" axis="0 -1 0" pos="0 0 0.25" range="-150 0"/>
          <geom name="leg_geom" type="capsule" fromto="0 0 0.25 0 0 -0.25" size="0.04" friction="0.9"/>
          <body name="foot" pos="0.065 0 -0.25">
            <joint name="foot_joint" type="hinge" axis="0 -1 0" pos="-0.065 0 0" range="-45 45"/>
            <geom name="foot_geom" type="capsule" fromto="-0.195 0 0 0.195 0 0" size="0.06" friction="2.0"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="thigh" joint="thigh_joint" gear="200"/>
    <motor name="leg" joint="leg_joint" gear="200"/>
    <motor name="foot" joint="foot_joint" gear="200"/>
  </actuator>
</mujoco>
`;
